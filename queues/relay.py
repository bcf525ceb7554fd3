"""The outbox relay: publishes committed outbox rows to their brokers.

One relay at a time publishes a given queue (a ``RelayLease`` that expires, so a killed
relay's queues are taken over); it takes the queue's oldest pending rows in id order, sends
them as one batch, and marks them published in one statement. A failed batch stays pending
and the whole queue backs off (retrying later rows first would break per-record order).
Publishing is at least once: a relay killed between the broker's answer and the mark sends
those rows again, with the same message ids.

Wake-up: PostgreSQL LISTEN/NOTIFY (one NOTIFY per committed transaction, see ``outbox.py``),
with polling as the fallback, and the only mechanism on SQLite or with ``listen=False``
(``manage.py relay --no-listen``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import Min, OuterRef, Q, Subquery
from django.utils import timezone

from queues.backends import get_backend
from queues.backends.base import Backend, OutgoingMessage, PublishResult
from queues.errors import MessageTooLarge, PublishFailed, QueueError
from queues.models import OutboxMessage, OutboxState, Queue, QueueType, RelayLease
from queues.notify import listen
from queues.outbox import NOTIFY_CHANNEL

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 60.0


def backoff(attempts: int) -> float:
    """Exponential with full jitter, capped: 0.5 s, 1 s, 2 s … 60 s."""
    ceiling = min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** max(0, attempts - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


@dataclass
class RelayCounters:
    published: int = 0
    failures: int = 0
    started: float = field(default_factory=time.monotonic)


@dataclass(slots=True)
class PendingRow:
    """What the relay needs of a pending outbox row."""

    pk: int
    message_id: str
    ordering_key: str
    body: dict[str, Any]
    attempts: int
    due: bool


class Relay:
    def __init__(
        self,
        *,
        batch_size: int = 500,
        lease_seconds: float = 15.0,
        poll_seconds: float = 0.5,
        retention: dt.timedelta = dt.timedelta(hours=24),
        owner: str | None = None,
        listen: bool = True,
    ) -> None:
        self.batch_size = batch_size
        self.listen = listen
        self.lease = dt.timedelta(seconds=lease_seconds)
        self.poll_seconds = poll_seconds
        self.retention = retention
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.counters = RelayCounters()
        self._backends: dict[int, tuple[dt.datetime, Backend]] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._last_cleanup = 0.0

    # -- the loop -----------------------------------------------------------------------------

    def run(self, stopping: threading.Event) -> None:
        with self._wakeups() as wait:
            while not stopping.is_set():
                published = self.run_once()
                if published == 0:
                    wait(self.poll_seconds)
                if time.monotonic() - self._last_cleanup > 60:
                    self.cleanup()
                    self.report()
        self.close()

    def run_once(self) -> int:
        """Publish what is due on every queue this relay can lease; returns rows published."""
        total = 0
        for queue in self._queues_due():
            if not self._acquire(queue.pk):
                continue
            try:
                total += self._drain(queue)
            finally:
                self._release(queue.pk)
        return total

    def _queues_due(self) -> list[Queue]:
        """Enabled queues whose oldest pending row is due, in one query: per queue, the head
        comes from the pending index (``queue, id``), whatever the size of the backlog."""
        head = OutboxMessage.objects.filter(
            queue_id=OuterRef("pk"), state=OutboxState.PENDING
        ).order_by("id")
        return list(
            Queue.objects.filter(enabled=True)
            .annotate(head_at=Subquery(head.values("available_at")[:1]))
            .filter(head_at__lte=timezone.now())
            .order_by("pk")
        )

    # -- leases -------------------------------------------------------------------------------

    def _acquire(self, queue_id: int) -> bool:
        """Take the queue's lease if it is free, expired or already ours: one UPDATE (the
        lease row is created the first time a queue is seen)."""
        now = timezone.now()
        free = Q(owner=self.owner) | Q(expires_at__lt=now) | Q(owner="")
        leases = RelayLease.objects.filter(free, queue_id=queue_id)
        taken = leases.update(owner=self.owner, expires_at=now + self.lease)
        if taken == 0 and not RelayLease.objects.filter(queue_id=queue_id).exists():
            RelayLease.objects.get_or_create(queue_id=queue_id)
            taken = leases.update(owner=self.owner, expires_at=now + self.lease)
        return taken == 1

    def _renew(self, queue_id: int) -> bool:
        """Extend a lease this relay holds; False when another relay took it meanwhile."""
        renewed = RelayLease.objects.filter(queue_id=queue_id, owner=self.owner).update(
            expires_at=timezone.now() + self.lease
        )
        return renewed == 1

    def _release(self, queue_id: int) -> None:
        RelayLease.objects.filter(queue_id=queue_id, owner=self.owner).update(
            owner="", expires_at=timezone.now()
        )

    # -- publishing ---------------------------------------------------------------------------

    def _backend(self, queue: Queue) -> Backend:
        cached = self._backends.get(queue.pk)
        if cached is not None and cached[0] == queue.updated_at:
            return cached[1]
        if cached is not None:
            cached[1].close()
        backend = get_backend(queue)
        self._backends[queue.pk] = (queue.updated_at, backend)
        return backend

    def _drain(self, queue: Queue) -> int:
        """Publish the queue's pending rows batch by batch while the lease is ours.

        Every batch is read from the head of the queue (the oldest pending rows in id order),
        never "after the last one sent": a transaction that took a lower id but committed late
        is then published before any later write of the same record (which waited for that
        record's row lock, so committed after it)."""
        rows = self._pending(queue.pk)
        if not rows or not rows[0].due:
            return 0
        if queue.type == QueueType.DATABASE:
            return self._drain_in_turn(queue, rows)  # it publishes with this thread's connection
        return self._drain_overlapped(queue, rows)

    def _drain_in_turn(self, queue: Queue, rows: list[PendingRow]) -> int:
        """Read, publish, mark; again while batches come full."""
        published = 0
        while rows and rows[0].due:
            messages = [OutgoingMessage(r.message_id, r.body, r.ordering_key or None) for r in rows]
            sent, kept = self._settle(queue, rows, _send(self._backend(queue), messages))
            published += sent
            if sent < len(rows) or not kept or len(rows) < self.batch_size:
                # A failure (the queue waits), the lease is gone, or the backlog is drained
                # (rows committed since then come with their own NOTIFY).
                return published
            rows = self._pending(queue.pk)
        return published

    def _drain_overlapped(self, queue: Queue, rows: list[PendingRow]) -> int:
        """The same, with the broker's work in a helper thread overlapping this thread's
        database work: while the broker takes batch N+1, batch N is marked and batch N+2 read.

        * N+1 is handed to the broker only once N is acknowledged in full; when N fails in any
          way the rows read ahead are dropped and the queue waits (per-record order).
        * Rows read ahead come from the head of the queue, leaving out only the batch in
          flight (see ``_drain``).
        * Marks are made in batch order: if marking N fails, N+1 (already sent) is left
          pending too, so both are sent again in order, never N again after N+1 alone.
        """
        backend = self._backend(queue)
        published = 0
        future = self._submit(backend, rows)
        try:
            ahead = self._read_ahead(queue.pk, rows)
        except BaseException:
            future.result()  # the backend is never used by two threads
            raise
        while True:
            outcome = future.result()
            if isinstance(outcome, QueueError):
                sent, _ = self._settle(queue, rows, outcome)
                return published + sent
            following = ahead if ahead and ahead[0].due else []
            next_future = self._submit(backend, following) if following else None
            try:
                kept = self._mark_published(list(zip(rows, outcome, strict=True)), queue.pk)
                published += len(rows)
                if next_future is None:
                    return published
                if not kept:
                    # Another relay has the queue now: record what went out, then stop.
                    sent = self._settle(queue, following, next_future.result())[0]
                    return published + sent
                ahead = self._read_ahead(queue.pk, following)
            except BaseException:
                if next_future is not None:
                    next_future.result()  # sent, left pending: it goes again after this batch
                raise
            rows, future = following, next_future

    def _submit(self, backend: Backend, rows: list[PendingRow]) -> Future[Any]:
        messages = [OutgoingMessage(r.message_id, r.body, r.ordering_key or None) for r in rows]
        return self._helper().submit(_send, backend, messages)

    def _read_ahead(self, queue_id: int, in_flight: list[PendingRow]) -> list[PendingRow]:
        """The next batch, unless the one in flight is the end of the backlog."""
        if len(in_flight) < self.batch_size:
            return []
        return self._pending(queue_id, skip={r.pk for r in in_flight})

    def _helper(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relay-publish")
        return self._executor

    def _pending(self, queue_id: int, skip: set[int] | None = None) -> list[PendingRow]:
        """The queue's oldest pending rows but those in ``skip``, as plain values (model
        instances, with their datetime and JSON conversions, cost more than publishing)."""
        table = OutboxMessage._meta.db_table
        message_id = "message_id::text" if connection.vendor == "postgresql" else "message_id"
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        skip = skip or set()
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, {message_id}, ordering_key, body, attempts, available_at <= %s "
                f"FROM {table} WHERE queue_id = %s AND state = %s ORDER BY id LIMIT %s",
                [now, queue_id, OutboxState.PENDING.value, self.batch_size + len(skip)],
            )
            found = [row for row in cursor.fetchall() if row[0] not in skip][: self.batch_size]
        if connection.vendor != "postgresql":  # SQLite keeps UUIDs as 32 hex digits
            return [
                PendingRow(pk, str(uuid.UUID(mid)), key, json.loads(body), tries, bool(due))
                for pk, mid, key, body, tries, due in found
            ]
        return [
            PendingRow(pk, mid, key, json.loads(body), tries, due)
            for pk, mid, key, body, tries, due in found
        ]

    def _settle(
        self, queue: Queue, rows: list[PendingRow], outcome: list[PublishResult] | QueueError
    ) -> tuple[int, bool]:
        """Record a batch's outcome: (rows published, whether the lease is still ours)."""
        if isinstance(outcome, MessageTooLarge):
            # That row can never be published: park it for an admin, keep the queue moving.
            OutboxMessage.objects.filter(message_id=outcome.message_id).update(
                state=OutboxState.FAILED, last_error=outcome.message
            )
            self.counters.failures += 1
            return 0, True
        if isinstance(outcome, PublishFailed):
            by_id = {r.message_id: r for r in outcome.published}
            done = [(row, by_id[row.message_id]) for row in rows if row.message_id in by_id]
            self._mark_published(done)
            self._postpone(queue, [row for row in rows if row.message_id not in by_id], outcome)
            return len(done), True
        if isinstance(outcome, QueueError):
            self._postpone(queue, rows, outcome)
            return 0, True
        # Results come in the order of the messages (the Backend contract).
        kept = self._mark_published(list(zip(rows, outcome, strict=True)), renew=queue.pk)
        return len(outcome), kept

    def _mark_published(
        self, done: list[tuple[PendingRow, PublishResult]], renew: int | None = None
    ) -> bool:
        """Mark rows published with their broker references, renewing the lease of queue
        ``renew`` on the way; False when that lease is no longer ours."""
        now = timezone.now()
        table = OutboxMessage._meta.db_table
        published = OutboxState.PUBLISHED.value
        if connection.vendor != "postgresql":
            at = connection.ops.adapt_datetimefield_value(now)
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.executemany(
                    f"UPDATE {table} SET state = %s, published_at = %s, broker_ref = %s "
                    "WHERE id = %s",
                    [(published, at, json.dumps(r.broker_reference()), row.pk) for row, r in done],
                )
            self.counters.published += len(done)
            return renew is None or self._renew(renew)
        # One statement for the marks and the lease, the references as one JSON document:
        # Django's bulk_update builds a CASE per row and column (89% of relay time when
        # profiled), and arrays of values are quoted one element at a time in Python.
        refs = json.dumps([{"id": row.pk, "ref": r.broker_reference()} for row, r in done])
        lease = RelayLease._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH marked AS (UPDATE {table} AS o "
                "SET state = %s, published_at = %s, broker_ref = v.ref "
                "FROM jsonb_to_recordset(%s::jsonb) AS v(id bigint, ref jsonb) "
                "WHERE o.id = v.id RETURNING 1), "
                f"renewed AS (UPDATE {lease} SET expires_at = %s "
                "WHERE queue_id = %s AND owner = %s RETURNING 1) "
                "SELECT (SELECT count(*) FROM renewed)",
                [published, now, refs, now + self.lease, renew, self.owner],
            )
            (renewed,) = cursor.fetchone()
        self.counters.published += len(done)
        return renew is None or renewed == 1

    def _postpone(self, queue: Queue, rows: list[PendingRow], error: QueueError) -> None:
        """Keep the batch pending; the queue waits before the next try (per-record order)."""
        if not rows:
            return
        attempts = rows[0].attempts + 1
        log.warning("relay: %s: %s (attempt %d)", queue.name, error.message, attempts)
        OutboxMessage.objects.filter(pk__in=[r.pk for r in rows]).update(
            attempts=attempts,
            last_error=f"{error.code}: {error.message}"[:2000],
            available_at=timezone.now() + dt.timedelta(seconds=backoff(attempts)),
        )
        self.counters.failures += 1

    # -- housekeeping -------------------------------------------------------------------------

    def cleanup(self) -> int:
        """Delete rows published longer ago than the retention period."""
        self._last_cleanup = time.monotonic()
        cutoff = timezone.now() - self.retention
        deleted, _ = OutboxMessage.objects.filter(
            state=OutboxState.PUBLISHED, published_at__lt=cutoff
        ).delete()
        return deleted

    def report(self) -> None:
        """Log published per second and failures since the last report, with the backlog."""
        now = time.monotonic()
        elapsed = max(now - self.counters.started, 1e-9)
        stats = outbox_stats()
        log.info(
            "relay: published %d (%.1f/s), %d failed batches; backlog %s, oldest %.1fs",
            self.counters.published,
            self.counters.published / elapsed,
            self.counters.failures,
            stats["pending"],
            stats["oldest_pending_seconds"] or 0.0,
        )
        self.counters = RelayCounters(started=now)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        for _, backend in self._backends.values():
            backend.close()
        self._backends.clear()

    @contextmanager
    def _wakeups(self) -> Iterator[Callable[[float], None]]:
        """A ``wait(seconds)`` that returns early on NOTIFY (PostgreSQL) or just sleeps (SQLite,
        or ``listen=False``: polling alone, e.g. where a pooler such as PgBouncer in
        transaction mode cannot hold a LISTEN session)."""
        if connection.vendor != "postgresql" or not self.listen:
            yield _sleeper
            return
        with listen(NOTIFY_CHANNEL) as listener:

            def wait(seconds: float) -> None:
                for _ in listener.notifies(timeout=seconds, stop_after=1):
                    pass

            yield wait


def _send(backend: Backend, messages: list[OutgoingMessage]) -> list[PublishResult] | QueueError:
    """``backend.publish``, with a queue error as a value (it may run in the helper thread)."""
    try:
        return backend.publish(messages)
    except QueueError as exc:
        return exc


def _sleeper(seconds: float) -> None:
    time.sleep(seconds)


def outbox_stats() -> dict[str, Any]:
    """Backlog and oldest pending age, for the back-office and monitoring."""
    pending = OutboxMessage.objects.filter(state=OutboxState.PENDING)
    oldest = pending.aggregate(oldest=Min("created_at"))["oldest"]
    return {
        "pending": pending.count(),
        "failed": OutboxMessage.objects.filter(state=OutboxState.FAILED).count(),
        "oldest_pending_seconds": (timezone.now() - oldest).total_seconds() if oldest else None,
    }
