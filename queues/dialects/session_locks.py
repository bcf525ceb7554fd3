"""Locks that end with a database session: ``session_locks(space)``.

On PostgreSQL, session-level advisory locks (``pg_try_advisory_lock(space, key)``, the
two-integer form, so they never meet ``ctx.lock``'s one-bigint keys) held on a connection of
their own that lives as long as the process. When the process dies, even by SIGKILL, the
kernel closes its socket, the server ends the session and its locks are free at once: another
process's next try takes them. The session asks the server to probe the connection (TCP
keepalives after 5 s idle, every 2 s, 3 probes; ``tcp_user_timeout`` 10 s), so the locks of a
host that vanished without closing its sockets are freed within about 11 s, not the system
default of two hours.

A lock lives on its session: if the session breaks (server restart, network), the locks are
gone with it. ``take`` then opens a new session and tries again; ``give_back`` forgets a lock
whose session is gone. Callers that must not act without the lock learn that another process
took it over through their own bookkeeping (the relay: ``RelayLease.owner``, checked by every
mark).

Where the database has no advisory locks (SQLite), ``session_locks`` returns None and callers
keep expiring rows.
"""

from __future__ import annotations

import abc
import contextlib
import logging
from typing import Any

from django.db import connection

from queues.dialects import dialect

log = logging.getLogger("queues.relay")

#: Server-side probes of the lock session's socket (user-settable on PostgreSQL; ignored on
#: Unix sockets, where a dead peer is seen at once).
KEEPALIVES = (
    "SET tcp_keepalives_idle = 5",
    "SET tcp_keepalives_interval = 2",
    "SET tcp_keepalives_count = 3",
    "SET tcp_user_timeout = 10000",
)
TRY_LOCK = "SELECT pg_try_advisory_lock(%s, %s)"
UNLOCK = "SELECT pg_advisory_unlock(%s, %s)"


class SessionLocks(abc.ABC):
    """Locks on named integer keys, held until given back or until the holder's session ends."""

    @abc.abstractmethod
    def take(self, key: int) -> bool:
        """Take ``key`` unless another session holds it; True when held now (also when it was
        already held by this one)."""

    @abc.abstractmethod
    def give_back(self, key: int) -> None: ...

    @abc.abstractmethod
    def close(self) -> None:
        """End the session: every lock it holds is free."""

    @property
    @abc.abstractmethod
    def session_id(self) -> int | None:
        """The server's id of the session holding the locks (PostgreSQL: its backend pid)."""


def session_locks(space: int, name: str = "quaymaster") -> SessionLocks | None:
    """Locks in key space ``space`` (a signed 32-bit integer) on a session of their own
    (``application_name`` ``name``), or None where the database has none."""
    if not dialect().advisory_locks:
        return None
    return PostgresSessionLocks(space, name)


def _int4(key: int) -> int:
    """``key`` as PostgreSQL's signed 32-bit integer (ids beyond 2**31 wrap)."""
    key &= 0xFFFFFFFF
    return key - 0x100000000 if key >= 0x80000000 else key


class PostgresSessionLocks(SessionLocks):
    def __init__(self, space: int, name: str) -> None:
        self.space = _int4(space)
        self.name = name
        self._session: Any = None
        self._held: set[int] = set()

    @property
    def session_id(self) -> int | None:
        return None if self._session is None else int(self._session.info.backend_pid)

    def take(self, key: int) -> bool:
        if key in self._held:
            return True
        import psycopg

        try:
            taken = self._try(key)
        except psycopg.OperationalError as exc:
            # The session broke, and its locks with it: a new one, once.
            log.warning("relay: lock session lost (%s); opening a new one", exc)
            self._drop()
            taken = self._try(key)
        if taken:
            self._held.add(key)
        return taken

    def give_back(self, key: int) -> None:
        if key not in self._held:
            return
        self._held.discard(key)
        import psycopg

        try:
            self._connected().execute(UNLOCK, [self.space, _int4(key)])
        except psycopg.Error:
            self._drop()  # the session is gone: so is the lock

    def close(self) -> None:
        self._drop()

    def _try(self, key: int) -> bool:
        row = self._connected().execute(TRY_LOCK, [self.space, _int4(key)]).fetchone()
        return bool(row and row[0])

    def _connected(self) -> Any:
        if self._session is None or self._session.closed:
            import psycopg

            params = connection.get_connection_params()
            params.pop("cursor_factory", None)
            params.pop("context", None)
            params["application_name"] = self.name
            session = psycopg.connect(**params, autocommit=True)
            for statement in KEEPALIVES:
                # An older server without one of them: its default then.
                with contextlib.suppress(psycopg.errors.UndefinedObject):
                    session.execute(statement)
            self._session = session
            self._held.clear()
        return self._session

    def _drop(self) -> None:
        session, self._session = self._session, None
        self._held.clear()
        if session is not None:
            with contextlib.suppress(Exception):
                session.close()
