"""A message's timeline, end to end: written (the outbox row of a record's version), published
(the engine's id and time: ``queues.models.MessageTrace``), then each delivery attempt from the
lifecycle log (worker, start, end, outcome — acked, retried with its delay, dead-lettered —
the error, and the handler's ``ctx.log`` lines).

Nothing here is written on the hot path: the relay and the publish API keep the trace rows,
the workers' lifecycle log keeps the rest, and this module joins them by message id when a
page or the API asks (``message_timeline``, ``record_timeline``).

Who sees what: admins see every message; anyone else sees the timelines of record events of
tables granted to them (``zstorage.permissions``), never a queue's name or a worker's host
(``Timeline.as_dict(admin=False)`` leaves them out).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from accounts.roles import is_admin
from queues.models import MessageTrace, OutboxMessage, OutboxState, Queue, TraceSource
from queues.outbox import record_key
from queues.tracing import as_message_id, resolve
from workers.models import EventKind, LifecycleEvent, WorkerProcess
from zstorage.models import RecordChange, Table
from zstorage.permissions import visible_tables

#: The newest versions a record's timeline shows.
MAX_VERSIONS = 50
#: Most lifecycle lines read for one message (a message retried for days stays readable).
MAX_EVENTS = 500
_RETRY_DELAY = re.compile(r"^Retry in (?P<delay>[0-9.]+)s: ")

OUTCOMES = {
    EventKind.COMPLETE: "acked",
    EventKind.RETRIED: "retried",
    EventKind.DEAD_LETTERED: "dead_lettered",
}


@dataclass
class LogLine:
    at: datetime
    level: str
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "level": self.level, "text": self.text}


@dataclass
class Attempt:
    """One delivery: ``outcome`` is acked, retried, dead_lettered, or running (no end seen
    yet: in progress, or its worker was killed and the engine delivers it again)."""

    number: int | None
    handler: str = ""
    worker: str = ""
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_ms: int | None = None
    outcome: str = "running"
    retry_delay: float | None = None
    error: str = ""
    logs: list[LogLine] = field(default_factory=list)

    def as_dict(self, admin: bool) -> dict[str, Any]:
        return {
            "attempt": self.number,
            "handler": self.handler,
            **({"worker": self.worker} if admin else {}),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "duration_ms": self.duration_ms,
            "outcome": self.outcome,
            "retry_delay": self.retry_delay,
            "error": self.error,
            "logs": [line.as_dict() for line in self.logs],
        }


@dataclass
class Timeline:
    """Everything known of one message. ``state``: pending or failed while in the outbox,
    published once the engine took it, unknown when only the lifecycle log knows it."""

    message_id: str
    queue_id: int | None = None
    queue_name: str = ""
    queue_type: str = ""
    source: str = ""
    handler: str = ""
    table: str = ""
    record_id: int | None = None
    version: int | None = None
    state: str = "unknown"
    written_at: datetime | None = None
    broker_id: str = ""
    published_at: datetime | None = None
    publish_error: str = ""
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        return self.attempts[-1].outcome if self.attempts else self.state

    @property
    def broker_label(self) -> str:
        """What the engine calls ``broker_id``."""
        return {
            "sqs": "SQS MessageId",
            "kafka": "Kafka partition:offset",
            "rabbitmq": "AMQP message-id",
            "database": "Database row",
        }.get(self.queue_type, "Broker id")

    def as_dict(self, admin: bool) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            **({"queue": self.queue_name, "queue_id": self.queue_id} if admin else {}),
            "source": self.source,
            "handler": self.handler,
            "record": (
                {"table": self.table, "id": self.record_id, "version": self.version}
                if self.record_id is not None
                else None
            ),
            "state": self.state,
            "written_at": self.written_at.isoformat() if self.written_at else None,
            "broker_id": self.broker_id,
            "broker_id_kind": self.broker_label,
            "published_at": self.published_at.isoformat() if self.published_at else None,
            "publish_error": self.publish_error,
            "outcome": self.outcome,
            "attempts": [attempt.as_dict(admin) for attempt in self.attempts],
        }


# -- who may see a message ---------------------------------------------------------------------


def may_see(user: Any, timeline: Timeline) -> bool:
    """Admins see every message; others only a record event of a table granted to them."""
    return bool(_visible(user, [timeline]))


def _visible(user: Any, timelines: list[Timeline]) -> list[Timeline]:
    """Those of ``timelines`` ``user`` may see (``may_see``), in order, in one query whatever
    their number."""
    if is_admin(user):
        return timelines
    events = [t for t in timelines if t.table and t.record_id is not None]
    if not events or not getattr(user, "is_authenticated", False):
        return []
    slugs = {t.table for t in events}
    granted = set(visible_tables(user).filter(slug__in=slugs).values_list("slug", flat=True))
    return [t for t in events if t.table in granted]


# -- building ----------------------------------------------------------------------------------


def message_timeline(message_id: str) -> Timeline | None:
    """The timeline of one message id, or None when nothing knows it."""
    found = as_message_id(message_id)
    if found is None:
        return None
    timelines = _timelines([found])
    return timelines.get(found)


def find_messages(user: Any, text: str) -> list[Timeline]:
    """What a pasted id names (``queues.tracing.resolve``), only what ``user`` may see."""
    ids = resolve(text)
    timelines = _timelines(ids)
    return _visible(user, [t for i in ids if (t := timelines.get(i)) is not None])


@dataclass
class VersionTimeline:
    version: int
    kind: str = ""
    at: datetime | None = None
    actor: str = ""
    messages: list[Timeline] = field(default_factory=list)

    def as_dict(self, admin: bool) -> dict[str, Any]:
        return {
            "version": self.version,
            "kind": self.kind,
            "at": self.at.isoformat() if self.at else None,
            "actor": self.actor,
            "messages": [m.as_dict(admin) for m in self.messages],
        }


def record_timeline(table: Table, record_id: int) -> list[VersionTimeline]:
    """A record's newest ``MAX_VERSIONS`` versions, newest first, each with the messages its
    change sent (one per link, published or still in the outbox)."""
    changes = list(
        RecordChange.objects.filter(table=table, record_id=record_id)
        .select_related("actor")
        .order_by("-version", "-id")[:MAX_VERSIONS]
    )
    versions = {c.version: VersionTimeline(c.version, str(c.kind), c.at) for c in changes}
    for change in changes:
        versions[change.version].actor = change.actor.get_username() if change.actor else ""
    oldest = min(versions, default=0)
    traced = MessageTrace.objects.filter(
        table=table.slug, record_id=record_id, version__gte=oldest
    ).values_list("message_id", flat=True)
    waiting = OutboxMessage.objects.filter(
        state__in=[OutboxState.PENDING, OutboxState.FAILED],
        ordering_key=record_key(table.slug, record_id),
    ).values_list("message_id", flat=True)
    ids = [str(m) for m in traced] + [str(m) for m in waiting]
    for timeline in _timelines(ids).values():
        if timeline.record_id != record_id or timeline.table != table.slug:
            continue
        version = versions.get(timeline.version or 0)
        if version is not None:
            version.messages.append(timeline)
    for version in versions.values():
        version.messages.sort(key=lambda t: (t.queue_name, t.handler, t.message_id))
    return sorted(versions.values(), key=lambda v: -v.version)


def _timelines(message_ids: Iterable[str]) -> dict[str, Timeline]:
    """Timelines of ``message_ids`` (canonical UUID text) in four queries whatever their number:
    traces, outbox rows, lifecycle events, queues (and the workers named)."""
    ids = list(dict.fromkeys(message_ids))
    if not ids:
        return {}
    timelines: dict[str, Timeline] = {}
    for trace in MessageTrace.objects.filter(message_id__in=ids):
        timelines[str(trace.message_id)] = Timeline(
            message_id=str(trace.message_id),
            queue_id=trace.queue_id,
            source=trace.source,
            table=trace.table,
            record_id=trace.record_id,
            version=trace.version,
            state=OutboxState.PUBLISHED.value,
            broker_id=trace.broker_id,
            published_at=trace.published_at,
        )
    for row in OutboxMessage.objects.filter(message_id__in=ids):
        _add_outbox_row(timelines, row)
    events = LifecycleEvent.objects.filter(message_id__in=ids).order_by("at", "id")
    by_message: dict[str, list[LifecycleEvent]] = defaultdict(list)
    for event in events[: MAX_EVENTS * len(ids)]:
        if len(by_message[event.message_id]) < MAX_EVENTS:
            by_message[event.message_id].append(event)
    workers = _workers({e.worker_id for found in by_message.values() for e in found})
    for message_id, found in by_message.items():
        timeline = timelines.setdefault(message_id, Timeline(message_id=message_id))
        timeline.attempts = _attempts(found, workers)
        if not timeline.queue_name:
            timeline.queue_name = found[0].queue
        if not timeline.handler:
            timeline.handler = next((e.handler for e in found if e.handler), "")
    _name_queues(timelines.values())
    return timelines


def _add_outbox_row(timelines: dict[str, Timeline], row: OutboxMessage) -> None:
    message_id = str(row.message_id)
    body = row.body if isinstance(row.body, dict) else {}
    timeline = timelines.get(message_id)
    if timeline is None:
        timeline = timelines[message_id] = Timeline(
            message_id=message_id, queue_id=row.queue_id, source=TraceSource.OUTBOX.value
        )
        # Still in the outbox: a record's event by the same test as the relay's (its key).
        record_id, version = body.get("record_id"), body.get("version")
        if (
            isinstance(record_id, int)
            and not isinstance(record_id, bool)
            and row.ordering_key == record_key(str(body.get("table")), record_id)
        ):
            timeline.table, timeline.record_id = str(body.get("table")), record_id
            timeline.version = version if isinstance(version, int) else None
    timeline.state = str(row.state)
    timeline.written_at = row.created_at
    if row.state != OutboxState.PUBLISHED:
        timeline.publish_error = row.last_error
    handler = body.get("handler")
    if isinstance(handler, str):
        timeline.handler = handler


def _attempts(events: list[LifecycleEvent], workers: dict[int, str]) -> list[Attempt]:
    """The lifecycle lines of one message as attempts: a ``started`` line opens one (numbered
    by the engine's delivery count), its outcome closes it; log lines and errors between
    belong to the open one."""
    attempts: list[Attempt] = []
    by_number: dict[int | None, Attempt] = {}
    current: Attempt | None = None
    for event in events:
        kind = event.kind
        if kind == EventKind.STARTED:
            current = Attempt(
                number=event.attempt,
                handler=event.handler,
                worker=workers.get(event.worker_id or 0, ""),
                started_at=event.at,
            )
            attempts.append(current)
            by_number[event.attempt] = current
            continue
        target = by_number.get(event.attempt, current) if event.attempt is not None else current
        if target is None:  # an outcome without its start (pruned, or written first)
            target = current = Attempt(number=event.attempt, handler=event.handler)
            attempts.append(target)
            by_number[event.attempt] = target
        if kind == EventKind.FAILED:
            target.error = event.detail
        elif kind in OUTCOMES:
            target.outcome = OUTCOMES[EventKind(kind)]
            target.ended_at = event.at
            target.duration_ms = event.duration_ms
            if kind == EventKind.RETRIED:
                delay = _RETRY_DELAY.match(event.detail)
                target.retry_delay = float(delay["delay"]) if delay else None
            if event.detail and not target.error:
                target.error = event.detail
        else:
            target.logs.append(LogLine(event.at, event.level, event.detail))
    return attempts


def _workers(ids: set[int | None]) -> dict[int, str]:
    wanted = [i for i in ids if i]
    if not wanted:
        return {}
    rows = WorkerProcess.objects.filter(pk__in=wanted).values_list("pk", "host", "pid")
    return {pk: f"{host}:{pid}" for pk, host, pid in rows}


def _name_queues(timelines: Iterable[Timeline]) -> None:
    found = [t for t in timelines if t.queue_id is not None]
    queues = Queue.objects.in_bulk({t.queue_id for t in found if t.queue_id is not None})
    for timeline in found:
        queue = queues.get(timeline.queue_id or 0)
        if queue is not None:
            timeline.queue_name = queue.name
            timeline.queue_type = queue.type
