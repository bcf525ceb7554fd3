"""The lifecycle log: written in batches by a background thread, read by ``stream_events``.

A handler must not pay a database write per log line, so events go into a bounded in-memory
buffer that one thread flushes every ``flush_interval`` (or sooner when a batch is full), with
``COPY`` on PostgreSQL and one ``executemany`` of plain tuples elsewhere. A busy worker writes
two events per message; building model instances for ``bulk_create`` cost more CPU than the
handlers, so the writer skips the ORM (``insert_events``). If the database is unreachable the
buffer keeps the newest ``max_buffer`` events and counts what it dropped: the log is for
people, the queue is the source of truth.

Retention is bounded two ways (both settings): events older than
``QUAYMASTER_LIFECYCLE_RETENTION_DAYS`` are deleted, and only the newest
``QUAYMASTER_LIFECYCLE_MAX_EVENTS`` are kept, by the ``workers.prune_lifecycle`` Celery task
(``prune_events``), which deletes the message traces (``queues.tracing``) of the same age.
"""

from __future__ import annotations

import collections
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.utils import timezone

from queues.dialects import dialect
from queues.tracing import prune_traces
from workers.models import EventKind, Level, LifecycleEvent, WorkerProcess

logger = logging.getLogger("workers.events")

DEFAULT_RETENTION_DAYS = 7.0
DEFAULT_MAX_EVENTS = 100_000
MAX_DETAIL = 20_000
STREAM_LIMIT = 500


@dataclass
class Event:
    queue: str
    kind: EventKind
    message_id: str = ""
    handler: str = ""
    level: Level = Level.INFO
    detail: str = ""
    attempt: int | None = None
    duration_ms: int | None = None
    at: datetime = field(default_factory=timezone.now)

    def values(self, worker_id: int | None) -> tuple[Any, ...]:
        """The row, in ``COLUMNS`` order, as ``insert_events`` writes it."""
        return (
            self.queue[:80],
            self.message_id[:100],
            self.handler[:200],
            str(self.kind),
            str(self.level),
            self.detail[:MAX_DETAIL],
            self.attempt,
            self.duration_ms,
            worker_id,
            self.at,
        )


COLUMNS = (
    "queue",
    "message_id",
    "handler",
    "kind",
    "level",
    "detail",
    "attempt",
    "duration_ms",
    "worker_id",
    "at",
)


def insert_events(events: list[Event], worker_id: int | None, batch_size: int = 500) -> None:
    """Write ``events`` in one transaction, in as few round trips as the database allows
    (``COPY`` on PostgreSQL, one ``INSERT`` executed for many rows on SQLite: the dialect's)."""
    rows = (event.values(worker_id) for event in events)
    with transaction.atomic(), connection.cursor() as cursor:
        dialect().insert_many(cursor, LifecycleEvent._meta.db_table, COLUMNS, rows, batch_size)


class EventSink:
    """Where a worker sends events. This one only logs them; ``EventWriter`` stores them."""

    def emit(self, event: Event) -> None:
        logger.debug("%s %s %s %s", event.queue, event.kind, event.message_id, event.detail)


class EventWriter(EventSink):
    """Buffers events and writes them in batches from its own thread."""

    def __init__(
        self,
        *,
        worker_id: int | None = None,
        flush_interval: float = 0.25,
        batch_size: int = 500,
        max_buffer: int = 10_000,
    ) -> None:
        self.worker_id = worker_id
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.max_buffer = max_buffer
        self.dropped = 0
        self._buffer: collections.deque[Event] = collections.deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def emit(self, event: Event) -> None:
        with self._lock:
            self._buffer.append(event)
            while len(self._buffer) > self.max_buffer:
                self._buffer.popleft()
                self.dropped += 1
            full = len(self._buffer) >= self.batch_size
        if full:
            self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lifecycle-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is buffered, then stop the thread."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def flush(self) -> int:
        """Write every buffered event now; the number written (0 when the database failed)."""
        with self._lock:
            batch = list(self._buffer)
            self._buffer.clear()
        if not batch:
            return 0
        try:
            insert_events(batch, self.worker_id, self.batch_size)
        except DatabaseError:
            logger.exception("Could not write %d lifecycle event(s); keeping them", len(batch))
            with self._lock:
                self._buffer.extendleft(reversed(batch))
                while len(self._buffer) > self.max_buffer:
                    self._buffer.popleft()
                    self.dropped += 1
            close_old_connections()
            return 0
        return len(batch)

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                self._wake.wait(self.flush_interval)
                self._wake.clear()
                self.flush()
            self.flush()
        finally:
            connection.close()


# -- retention ---------------------------------------------------------------------------------


def retention() -> timedelta:
    days = float(getattr(settings, "QUAYMASTER_LIFECYCLE_RETENTION_DAYS", DEFAULT_RETENTION_DAYS))
    return timedelta(days=days)


def max_events() -> int:
    return int(getattr(settings, "QUAYMASTER_LIFECYCLE_MAX_EVENTS", DEFAULT_MAX_EVENTS))


def prune_events(now: datetime | None = None) -> int:
    """Delete events past the retention, then all but the newest ``max_events``; also forget
    worker processes that stopped (or were lost) before the retention. Returns events deleted."""
    cutoff = (now or timezone.now()) - retention()
    deleted, _ = LifecycleEvent.objects.filter(at__lt=cutoff).delete()
    keep = max_events()
    boundary = list(
        LifecycleEvent.objects.order_by("-id").values_list("id", flat=True)[keep : keep + 1]
    )
    if boundary:
        more, _ = LifecycleEvent.objects.filter(id__lte=boundary[0]).delete()
        deleted += more
    WorkerProcess.objects.filter(heartbeat_at__lt=cutoff).delete()
    prune_traces(cutoff)  # a message's trace lives as long as its lifecycle events
    return deleted


# -- reading -----------------------------------------------------------------------------------


def stream_events(
    after_id: int = 0,
    queue: str | None = None,
    handler: str | None = None,
    level: str | None = None,
    *,
    message_id: str | None = None,
    limit: int = STREAM_LIMIT,
) -> list[LifecycleEvent]:
    """Events with an id above ``after_id``, oldest first: what a live view polls (SSE sends
    each batch and remembers the last id). ``level`` is a minimum: ``"warning"`` also returns
    errors. ``queue`` is a queue name."""
    events = LifecycleEvent.objects.filter(id__gt=after_id)
    if queue:
        events = events.filter(queue=queue)
    if handler:
        events = events.filter(handler=handler)
    if message_id:
        events = events.filter(message_id=message_id)
    if level:
        events = events.filter(level__in=Level.at_least(level))
    return list(events.order_by("id")[: max(1, min(limit, STREAM_LIMIT))])
