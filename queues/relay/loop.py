"""The outbox relay: publishes committed outbox rows to their brokers.

One relay at a time publishes a given queue (a lease: on PostgreSQL an advisory lock that ends
with the relay's database session, so a killed relay's queues are taken over at the next poll
round; on SQLite an expiry: ``leases.py``); it takes the queue's oldest pending rows in id order
(``rows.py``), sends them as one batch, and marks them published in one statement. A failed
batch stays pending and the whole queue backs off (retrying later rows first would break
per-record order); of a batch the broker took in part (``PublishFailed``), only the rows it
confirmed are marked, and not those behind a refused row of the same ordering key.
Publishing is at least once: a relay killed between the broker's answer and the mark sends
those rows again, with the same message ids.

Wake-up: PostgreSQL LISTEN/NOTIFY (one NOTIFY per committed transaction, see ``outbox.py``),
with polling as the fallback, and the only mechanism on SQLite or with ``listen=False``
(``manage.py relay --no-listen``).

Backends come from ``backend_factory`` (``get_backend`` unless injected, as the worker takes
one) through a cache of the relay's own, closed with it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from quaymaster import logs, metrics
from queues.backends import get_backend
from queues.backends.base import Backend
from queues.backends.cache import BackendCache
from queues.backoff import backoff
from queues.dialects import dialect
from queues.errors import MessageTooLarge, PublishFailed, QueueError
from queues.messages import JsonText, OutgoingMessage, PublishResult
from queues.models import Queue
from queues.outbox import NOTIFY_CHANNEL
from queues.relay.leases import LeaseStore
from queues.relay.reporting import RelayCounters, report
from queues.relay.rows import OutboxRows, PendingRow

log = logging.getLogger("queues.relay")

#: How often the relay logs its rate, failures and backlog.
REPORT_SECONDS = 60.0


class Relay:
    def __init__(
        self,
        *,
        batch_size: int = 500,
        lease_seconds: float = 15.0,
        poll_seconds: float = 0.5,
        owner: str | None = None,
        listen: bool = True,
        backend_factory: Callable[[Queue], Backend] = get_backend,
        rows: OutboxRows | None = None,
        session_locks: bool = True,
    ) -> None:
        """``backend_factory`` builds a queue's backend (the cache keeps it while the queue is
        unchanged); ``rows`` is the outbox-row store, whose batch size then wins;
        ``session_locks=False`` holds queues by the lease's expiry alone (see ``leases.py``)."""
        self.rows = rows if rows is not None else OutboxRows(batch_size)
        self.batch_size = self.rows.batch_size
        self.listen = listen
        self.poll_seconds = poll_seconds
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.leases = LeaseStore(
            self.owner, dt.timedelta(seconds=lease_seconds), locks=session_locks
        )
        self.backends = BackendCache(backend_factory, max_idle=1)
        self.counters = RelayCounters()
        self._executor: ThreadPoolExecutor | None = None
        self._last_report = time.monotonic()

    # -- the loop -----------------------------------------------------------------------------

    def run(self, stopping: threading.Event) -> None:
        with self._wakeups() as wait:
            while not stopping.is_set():
                published = self.run_once()
                if published == 0:
                    wait(self.poll_seconds)
                if time.monotonic() - self._last_report > REPORT_SECONDS:
                    self.report()
        self.close()

    def run_once(self) -> int:
        """Publish what is due on every queue this relay can lease; returns rows published."""
        total = 0
        for queue in self.rows.queues_due():
            if not self.leases.acquire(queue.pk):
                metrics.RELAY_LEASES.labels(queue.name, "busy").inc()
                continue
            metrics.RELAY_LEASES.labels(queue.name, "acquired").inc()
            try:
                total += self._drain(queue)
            finally:
                self.leases.release(queue.pk)
        return total

    # -- publishing ---------------------------------------------------------------------------

    def _drain(self, queue: Queue) -> int:
        """Publish the queue's pending rows batch by batch while the lease is ours, from the
        head of the queue each time (see ``rows.py``)."""
        rows = self.rows.pending(queue.pk)
        if not rows or not rows[0].due:
            return 0
        # The queue on the relay's lines while it drains one (quaymaster.logs).
        with self.backends.lease(queue) as backend, logs.bound(queue=queue.name):
            if backend.thread_bound:  # it publishes with this thread's connection
                return self._drain_in_turn(queue, backend, rows)
            return self._drain_overlapped(queue, backend, rows)

    def _drain_in_turn(self, queue: Queue, backend: Backend, rows: list[PendingRow]) -> int:
        """Read, publish, mark; again while batches come full."""
        published = 0
        while rows and rows[0].due:
            sent, kept = self._settle(queue, rows, _send(backend, _messages(rows)))
            published += sent
            if sent < len(rows) or not kept or len(rows) < self.batch_size:
                # A failure (the queue waits), the lease is gone, or the backlog is drained
                # (rows committed since then come with their own NOTIFY).
                return published
            rows = self.rows.pending(queue.pk)
        return published

    def _drain_overlapped(self, queue: Queue, backend: Backend, rows: list[PendingRow]) -> int:
        """The same, with the broker's work in a helper thread overlapping this thread's
        database work: while the broker takes batch N+1, batch N is marked and batch N+2 read.

        * N+1 is handed to the broker only once N is acknowledged in full; when N fails in any
          way the rows read ahead are dropped and the queue waits (per-record order).
        * Rows read ahead come from the head of the queue, leaving out only the batch in
          flight (see ``rows.py``).
        * Marks are made in batch order: if marking N fails, N+1 (already sent) is left
          pending too, so both are sent again in order, never N again after N+1 alone.
        """
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
                kept = self._mark_published(queue, list(zip(rows, outcome, strict=True)), True)
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
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relay-publish")
        return self._executor.submit(_send, backend, _messages(rows))

    def _read_ahead(self, queue_id: int, in_flight: list[PendingRow]) -> list[PendingRow]:
        """The next batch, unless the one in flight is the end of the backlog."""
        if len(in_flight) < self.batch_size:
            return []
        return self.rows.pending(queue_id, skip={r.pk for r in in_flight})

    def _settle(
        self, queue: Queue, rows: list[PendingRow], outcome: list[PublishResult] | QueueError
    ) -> tuple[int, bool]:
        """Record a batch's outcome: (rows published, whether the lease is still ours)."""
        if isinstance(outcome, MessageTooLarge):
            # That row can never be published: park it for an admin, keep the queue moving.
            self.rows.park(outcome)
            self.counters.failures += 1
            metrics.RELAY_FAILED_BATCHES.labels(queue.name, queue.type).inc()
            return 0, True
        if isinstance(outcome, PublishFailed):
            done = _confirmed_in_order(rows, outcome)
            self._mark_published(queue, done)
            marked = {row.pk for row, _ in done}
            self._postpone(queue, [row for row in rows if row.pk not in marked], outcome)
            return len(done), True
        if isinstance(outcome, QueueError):
            self._postpone(queue, rows, outcome)
            return 0, True
        # Results come in the order of the messages (the Backend contract).
        kept = self._mark_published(queue, list(zip(rows, outcome, strict=True)), renew=True)
        return len(outcome), kept

    def _mark_published(
        self, queue: Queue, done: list[tuple[PendingRow, PublishResult]], renew: bool = False
    ) -> bool:
        """Mark rows published, renewing the queue's lease (``renew``) in the same statement;
        False when that lease is no longer ours."""
        renewal = self.leases.renewal(queue.pk) if renew else None
        kept = self.rows.mark_published(done, renewal)
        self.counters.published += len(done)
        metrics.RELAY_PUBLISHED.labels(queue.name, queue.type).inc(len(done))
        return kept

    def _postpone(self, queue: Queue, rows: list[PendingRow], error: QueueError) -> None:
        """Keep the batch pending; the queue waits before the next try (per-record order)."""
        if not rows:
            return
        attempts = rows[0].attempts + 1
        log.warning("relay: %s: %s (attempt %d)", queue.name, error.message, attempts)
        self.rows.postpone(rows, error, attempts, backoff(attempts))
        self.counters.failures += 1
        metrics.RELAY_FAILED_BATCHES.labels(queue.name, queue.type).inc()

    # -- reporting ----------------------------------------------------------------------------

    def report(self) -> None:
        """Log published per second and failures since the last report, with the backlog.
        (Published rows are deleted by the ``queues.prune_outbox`` Celery task.)"""
        now = time.monotonic()
        self._last_report = now
        report(self.counters, now)
        self.counters = RelayCounters(started=now)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self.backends.close()
        self.leases.close()

    @contextmanager
    def _wakeups(self) -> Iterator[Callable[[float], None]]:
        """A ``wait(seconds)`` that returns early on NOTIFY (PostgreSQL) or just sleeps (SQLite,
        or ``listen=False``: polling alone, e.g. where a pooler such as PgBouncer in
        transaction mode cannot hold a LISTEN session)."""
        listener = dialect().listen(NOTIFY_CHANNEL) if self.listen else None
        if listener is None:
            yield time.sleep
            return
        with listener:
            yield listener.wait


def _confirmed_in_order(
    rows: list[PendingRow], failed: PublishFailed
) -> list[tuple[PendingRow, PublishResult]]:
    """The rows the broker accepted, but those behind a refused row of the same ordering key:
    they stay pending and go again after it, so the last copy of each record's events that
    reaches the broker is in commit order."""
    by_id = {r.message_id: r for r in failed.published}
    held: set[str] = set()
    done = []
    for row in rows:
        result = by_id.get(row.message_id)
        if result is not None and row.ordering_key not in held:
            done.append((row, result))
        elif row.ordering_key:
            held.add(row.ordering_key)
    return done


def _messages(rows: list[PendingRow]) -> list[OutgoingMessage]:
    """The rows as messages: a body read as JSON text goes out as it is (``JsonText``)."""
    messages = []
    for r in rows:
        body = JsonText(r.body.encode()) if isinstance(r.body, str) else r.body
        if r.priority is None:
            messages.append(OutgoingMessage.stored(r.message_id, body, r.ordering_key or None))
        else:
            messages.append(
                OutgoingMessage(r.message_id, body, r.ordering_key or None, priority=r.priority)
            )
    return messages


def _send(backend: Backend, messages: list[OutgoingMessage]) -> list[PublishResult] | QueueError:
    """``backend.publish``, with a queue error as a value (it may run in the helper thread),
    timed as the relay's broker latency."""
    started = time.perf_counter()
    try:
        return backend.publish(messages)
    except QueueError as exc:
        return exc
    finally:
        queue = backend.queue
        metrics.RELAY_PUBLISH_SECONDS.labels(queue.name, queue.type).observe(
            time.perf_counter() - started
        )
