"""SQLite, the embedded default: one writer at a time, UUIDs stored as 32 hex digits,
datetimes adapted to text by Django's operations.

Wake-ups. SQLite has no NOTIFY, and polling it costs the embedded default its latency (the
relay's 0.5 s poll, the worker's 0.2 s). Every process of a deployment on one SQLite file runs
on one machine, so a wake-up is a datagram on a Unix socket: a ``listen(channel)`` binds a
socket of its own in a directory named for the database file and the channel (under the
temporary directory, so the path stays inside ``AF_UNIX``'s 108 bytes), and a commit that
``notify``-ed the channel sends one empty datagram to every socket there. As on PostgreSQL the
datagram goes after the commit and never for a rollback (a Django ``on_commit`` callback,
dropped with a rolled-back savepoint), and only once per transaction and channel. Nothing is
queued for a process that is not listening: a waiter looks at the database after it starts
listening (the relay's first pass, the fetch's first claim), and its poll stays the fallback.

Why not ``PRAGMA data_version`` polled every few milliseconds: it changes at every commit of
any connection, the relay's own and the workers' claims, acks and lifecycle log included, so
each waiter would wake several times per message and run its query for nothing; the socket
wakes the relay only for outbox rows and a queue's workers only for that queue's messages.

A listener's socket that outlived its process (SIGKILL) refuses datagrams: the first sender
that meets it removes it. A socket that cannot be made (a read-only or foreign temporary
directory) leaves ``listen`` returning None, and its waiter polls as before. ``listens`` stays
False: the database itself delivers no notification.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import json
import os
import select
import socket
import tempfile
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import connection, transaction

from queues.dialects.base import Dialect, Listener, NewOutboxRow, OutboxHead, Renewal
from queues.models import MessageTrace, OutboxMessage, OutboxState, RelayLease

OUTBOX = OutboxMessage._meta.db_table
LEASES = RelayLease._meta.db_table

OUTBOX_HEAD = (
    "SELECT id, message_id, ordering_key, body, attempts, available_at <= %s, priority "
    f"FROM {OUTBOX} WHERE queue_id = %s AND state = %s ORDER BY id LIMIT %s"
)
MARK_PUBLISHED = f"UPDATE {OUTBOX} SET state = %s, published_at = %s, broker_ref = %s WHERE id = %s"
RENEW_LEASE = f"UPDATE {LEASES} SET expires_at = %s WHERE queue_id = %s AND owner = %s"
# A marked row's trace (see the PostgreSQL dialect's MARK_TRACE_AND_RENEW).
_EVENT = (
    "(json_type(body, '$.record_id') = 'integer' AND json_extract(body, '$.record_id') >= 0 "
    "AND ordering_key = json_extract(body, '$.table') || ':' || json_extract(body, '$.record_id'))"
)
TRACE_PUBLISHED = (
    f"INSERT INTO {MessageTrace._meta.db_table} (message_id, queue_id, source, broker_id, "
    'published_at, "table", record_id, version) '
    "SELECT message_id, queue_id, 'outbox', substr(%s, 1, 200), %s, "
    f"CASE WHEN {_EVENT} THEN substr(json_extract(body, '$.table'), 1, 63) ELSE '' END, "
    f"CASE WHEN {_EVENT} THEN json_extract(body, '$.record_id') END, "
    f"CASE WHEN {_EVENT} AND json_type(body, '$.version') = 'integer' "
    "AND json_extract(body, '$.version') BETWEEN 0 AND 999999999 "
    "THEN json_extract(body, '$.version') END "
    f"FROM {OUTBOX} WHERE id = %s ON CONFLICT (message_id) DO UPDATE "
    "SET broker_id = excluded.broker_id, published_at = excluded.published_at"
)


class SQLite(Dialect):
    vendor = "sqlite"

    # -- wake-ups (see the module docstring) -----------------------------------------------------

    def insert_outbox(self, rows: Sequence[NewOutboxRow], channel: str) -> None:
        OutboxMessage.objects.bulk_create([row.model() for row in rows])
        self.notify_at_commit(channel)

    def notify_at_commit(self, channel: str) -> None:
        wake = Wake(channel_directory(str(connection.settings_dict["NAME"]), channel))
        if connection.in_atomic_block and any(e[1] == wake for e in connection.run_on_commit):
            return  # this transaction wakes the channel already
        transaction.on_commit(wake)

    def notify(self, channel: str) -> None:
        self.notify_at_commit(channel)

    def listen(self, channel: str) -> Listener | None:
        """A socket of this process's own in the channel's directory, or None (the caller
        polls) when the temporary directory does not take one."""
        try:
            return SocketListener(channel_directory(str(connection.settings_dict["NAME"]), channel))
        except OSError:
            return None

    # -- the relay ----------------------------------------------------------------------------

    def outbox_head(
        self, queue_id: int, now: dt.datetime, limit: int, skip: set[int]
    ) -> list[OutboxHead]:
        at = connection.ops.adapt_datetimefield_value(now)
        with connection.cursor() as cursor:
            cursor.execute(
                OUTBOX_HEAD, [at, queue_id, OutboxState.PENDING.value, limit + len(skip)]
            )
            found = [row for row in cursor.fetchall() if row[0] not in skip][:limit]
        return [
            (pk, str(uuid.UUID(mid)), key, json.loads(body), tries, bool(due), priority)
            for pk, mid, key, body, tries, due, priority in found
        ]

    def mark_published(
        self,
        marks: Sequence[tuple[int, Any, str]],
        at: dt.datetime,
        renewal: Renewal | None,
        traced: bool = True,
    ) -> bool:
        adapt = connection.ops.adapt_datetimefield_value
        published = OutboxState.PUBLISHED.value
        when = adapt(at)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(
                MARK_PUBLISHED, [(published, when, json.dumps(ref), pk) for pk, ref, _ in marks]
            )
            if traced:
                cursor.executemany(TRACE_PUBLISHED, [(key, when, pk) for pk, _, key in marks])
            if renewal is None:
                return True
            cursor.execute(
                RENEW_LEASE, [adapt(renewal.expires_at), renewal.queue_id, renewal.owner]
            )
            return bool(cursor.rowcount == 1)

    def insert_many(
        self,
        cursor: Any,
        table: str,
        columns: Sequence[str],
        rows: Iterable[tuple[Any, ...]],
        batch_size: int = 500,
    ) -> None:
        adapt = connection.ops.adapt_datetimefield_value
        names = ", ".join(connection.ops.quote_name(c) for c in columns)
        placeholders = ", ".join(["%s"] * len(columns))
        sql = f"INSERT INTO {connection.ops.quote_name(table)} ({names}) VALUES ({placeholders})"
        values = [tuple(adapt(v) if isinstance(v, dt.datetime) else v for v in row) for row in rows]
        for start in range(0, len(values), batch_size):
            cursor.executemany(sql, values[start : start + batch_size])


# -- wake-ups on Unix sockets (see the module docstring) ------------------------------------------


@functools.lru_cache(maxsize=64)
def channel_directory(database: str, channel: str) -> Path:
    """Where the listeners of ``channel`` on the SQLite file ``database`` bind their sockets:
    one directory per file and channel, named by a digest so that the path stays short."""
    if database != ":memory:" and not database.startswith("file:"):
        database = os.path.realpath(database)
    digest = hashlib.sha256(f"{database}\0{channel}".encode()).hexdigest()[:24]
    return Path(tempfile.gettempdir()) / f"quaymaster-{os.getuid()}" / digest


class SocketListener(Listener):
    """One waiter's socket: any datagram on it is a wake-up (how many does not matter)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = str(directory / f"{os.getpid()}-{uuid.uuid4().hex[:12]}")
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            for attempt in range(2):  # the last listener may remove the directory meanwhile
                directory.parent.mkdir(mode=0o700, exist_ok=True)
                directory.mkdir(mode=0o700, exist_ok=True)
                try:
                    self.socket.bind(self.path)
                    break
                except FileNotFoundError:
                    if attempt:
                        raise
        except OSError:
            self.socket.close()
            raise
        self.socket.setblocking(False)

    def wait(self, seconds: float) -> None:
        """Until a datagram (one already queued returns at once) or ``seconds``; then every
        queued datagram is read, so a burst of commits is one wake-up."""
        select.select([self.socket], [], [], max(0.0, seconds))
        while True:
            try:
                self.socket.recv(16)
            except BlockingIOError:
                return

    def close(self) -> None:
        """Close and remove the socket, and the channel's directory if it was the last."""
        self.socket.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        with contextlib.suppress(OSError):
            self.directory.rmdir()  # only when empty


@dataclass(frozen=True)
class Wake:
    """The on-commit callback that wakes a channel's listeners (equal for one channel, so a
    transaction registers it once)."""

    directory: Path

    def __call__(self) -> None:
        """Never raises: it runs after the writer's commit, which must not fail for it (a
        waiter missed here finds the rows at its next poll)."""
        try:
            names = os.listdir(self.directory)
            sender = _sender()
        except OSError:
            return  # nobody ever listened here, or no socket to send with
        for name in names:
            path = os.path.join(self.directory, name)
            try:
                sender.sendto(b"!", path)
            except BlockingIOError:
                pass  # its queue is full: it has a wake-up waiting already
            except (ConnectionRefusedError, FileNotFoundError):
                with contextlib.suppress(OSError):
                    os.unlink(path)  # its process is gone (a socket nobody holds refuses)
            except OSError:
                pass


_sender_lock = threading.Lock()
_senders: dict[int, socket.socket] = {}


def _sender() -> socket.socket:
    """This process's sending socket (unbound, non-blocking; made again after a fork)."""
    pid = os.getpid()
    with _sender_lock:
        sender = _senders.get(pid)
        if sender is None:
            sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sender.setblocking(False)
            _senders.clear()
            _senders[pid] = sender
        return sender
