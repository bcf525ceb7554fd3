"""The outbox relay: publishes committed outbox rows to their brokers.

One relay at a time publishes a given queue (a ``RelayLease`` that expires, so a killed
relay's queues are taken over); it takes the queue's oldest pending rows in id order, sends
them as one batch, and marks them published in one statement. A failed batch stays pending
and the whole queue backs off (retrying later rows first would break per-record order).
Publishing is at least once: a relay killed between the broker's answer and the mark sends
those rows again, with the same message ids.

Wake-up: PostgreSQL LISTEN/NOTIFY (one NOTIFY per committed transaction, see ``outbox.py``),
with polling as the fallback and the only mechanism on SQLite.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import Min, Q
from django.utils import timezone

from queues.backends import get_backend
from queues.backends.base import Backend, OutgoingMessage, PublishResult
from queues.errors import MessageTooLarge, PublishFailed, QueueError
from queues.models import OutboxMessage, OutboxState, Queue, RelayLease
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


class Relay:
    def __init__(
        self,
        *,
        batch_size: int = 500,
        lease_seconds: float = 15.0,
        poll_seconds: float = 0.5,
        retention: dt.timedelta = dt.timedelta(hours=24),
        owner: str | None = None,
    ) -> None:
        self.batch_size = batch_size
        self.lease = dt.timedelta(seconds=lease_seconds)
        self.poll_seconds = poll_seconds
        self.retention = retention
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.counters = RelayCounters()
        self._backends: dict[int, tuple[dt.datetime, Backend]] = {}
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
        for queue_id in self._queues_due():
            if not self._acquire(queue_id):
                continue
            try:
                total += self._drain(queue_id)
            finally:
                self._release(queue_id)
        return total

    def _queues_due(self) -> list[int]:
        now = timezone.now()
        heads = (
            OutboxMessage.objects.filter(state=OutboxState.PENDING)
            .values("queue_id")
            .annotate(first=Min("id"))
        )
        due = []
        for head in heads:
            first = OutboxMessage.objects.only("available_at").get(pk=head["first"])
            if first.available_at <= now:
                due.append(head["queue_id"])
        return due

    # -- leases -------------------------------------------------------------------------------

    def _acquire(self, queue_id: int) -> bool:
        now = timezone.now()
        RelayLease.objects.get_or_create(queue_id=queue_id)
        taken = RelayLease.objects.filter(
            Q(owner=self.owner) | Q(expires_at__lt=now) | Q(owner=""), queue_id=queue_id
        ).update(owner=self.owner, expires_at=now + self.lease)
        return taken == 1

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

    def _drain(self, queue_id: int) -> int:
        """Publish the queue's pending rows batch by batch while the lease is ours."""
        queue = Queue.objects.get(pk=queue_id)
        published = 0
        while True:
            rows = list(
                OutboxMessage.objects.filter(queue_id=queue_id, state=OutboxState.PENDING).order_by(
                    "id"
                )[: self.batch_size]
            )
            if not rows or rows[0].available_at > timezone.now():
                return published
            if not queue.enabled:
                return published
            sent = self._publish(queue, rows)
            published += sent
            if sent < len(rows) or not self._acquire(queue_id):
                return published

    def _publish(self, queue: Queue, rows: list[OutboxMessage]) -> int:
        messages = [
            OutgoingMessage(str(r.message_id), r.body, r.ordering_key or None) for r in rows
        ]
        try:
            results = self._backend(queue).publish(messages)
        except MessageTooLarge as exc:
            # That row can never be published: park it for an admin, keep the queue moving.
            OutboxMessage.objects.filter(message_id=exc.message_id).update(
                state=OutboxState.FAILED, last_error=exc.message
            )
            self.counters.failures += 1
            return 0
        except PublishFailed as exc:
            self._mark_published(rows, exc.published)
            self._postpone(rows, exc)
            return len(exc.published)
        except QueueError as exc:
            self._postpone(rows, exc)
            return 0
        self._mark_published(rows, results)
        return len(results)

    def _mark_published(self, rows: list[OutboxMessage], results: list[PublishResult]) -> None:
        by_id = {r.message_id: r for r in results}
        now = timezone.now()
        done = []
        for row in rows:
            result = by_id.get(str(row.message_id))
            if result is not None:
                row.state, row.published_at = OutboxState.PUBLISHED, now
                row.broker_ref = result.broker_reference()
                done.append(row)
        if connection.vendor == "postgresql":
            _mark_published_postgresql(done, now)
        else:
            with transaction.atomic():
                OutboxMessage.objects.bulk_update(done, ["state", "published_at", "broker_ref"])
        self.counters.published += len(done)

    def _postpone(self, rows: list[OutboxMessage], error: QueueError) -> None:
        """Keep the batch pending; the queue waits before the next try (per-record order)."""
        attempts = rows[0].attempts + 1
        log.warning("relay: %s: %s (attempt %d)", rows[0].queue_id, error.message, attempts)
        pending = [r.pk for r in rows if r.state == OutboxState.PENDING]
        OutboxMessage.objects.filter(pk__in=pending).update(
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
        for _, backend in self._backends.values():
            backend.close()
        self._backends.clear()

    @contextmanager
    def _wakeups(self) -> Iterator[Callable[[float], None]]:
        """A ``wait(seconds)`` that returns early on NOTIFY (PostgreSQL) or just sleeps."""
        if connection.vendor != "postgresql":
            yield _sleeper
            return
        import psycopg

        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        with psycopg.connect(**params, autocommit=True) as listener:
            listener.execute(f"LISTEN {NOTIFY_CHANNEL}")

            def wait(seconds: float) -> None:
                for _ in listener.notifies(timeout=seconds, stop_after=1):
                    pass

            yield wait


def _sleeper(seconds: float) -> None:
    time.sleep(seconds)


def _mark_published_postgresql(rows: list[OutboxMessage], now: dt.datetime) -> None:
    """One UPDATE joined to arrays of ids and broker references: Django's ``bulk_update``
    builds a CASE with a branch per row and column, which profiled at 89% of relay time."""
    if not rows:
        return
    table = OutboxMessage._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS o SET state = %s, published_at = %s, broker_ref = v.ref "
            "FROM unnest(%s::bigint[], %s::jsonb[]) AS v(id, ref) WHERE o.id = v.id",
            [
                OutboxState.PUBLISHED.value,
                now,
                [row.pk for row in rows],
                [json.dumps(row.broker_ref) for row in rows],
            ],
        )


def outbox_stats() -> dict[str, Any]:
    """Backlog and oldest pending age, for the back-office and monitoring."""
    pending = OutboxMessage.objects.filter(state=OutboxState.PENDING)
    oldest = pending.aggregate(oldest=Min("created_at"))["oldest"]
    return {
        "pending": pending.count(),
        "failed": OutboxMessage.objects.filter(state=OutboxState.FAILED).count(),
        "oldest_pending_seconds": (timezone.now() - oldest).total_seconds() if oldest else None,
    }
