"""A handler's context in a dry run: the same ``ctx``, with what it would change captured.

``workers.dry_run`` runs a dead letter's handler once with a context made here. What differs
from a worker's:

* settlement (``ack``, ``retry``, ``dead_letter``) is recorded, as always, and nobody carries
  it out: no consumer thread, no backend;
* ``ctx.publish`` checks the message as a worker's would (a JSON object naming a handler, an
  existing queue) and records it with a new message id; nothing reaches an outbox or a broker;
* ``ctx.records`` writes for real, inside the dry run's transaction, which is rolled back: each
  write's change event (``zstorage.events``) is recorded, and so are the outbox rows the table
  links made of it, read back before the rollback ("would publish");
* ``ctx.files.save`` stores nothing: it records the name and size and returns ``dry-run:<name>``;
* ``ctx.outbound.check`` refuses (``SideEffectRefused``): an HTTP request or an email cannot be
  taken back, so the built-in ``webhook`` and ``send_email`` stop right before sending;
* ``ctx.log`` lines, and what the handler logs with ``logging`` on its thread, are kept;
* ``ctx.lock`` and ``ctx.circuit`` work (breakers of the dry run's own, not the process's).

Once the dry run stops waiting for a handler that overran its time bound, the context is
*abandoned*: every further call to its services raises, so the handler ends at its next one.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.core.files.base import File
from django.db.models import Max

from queues.models import OutboxMessage
from workers.context import Files, Outbound, Publisher, Records, Services
from workers.errors import SideEffectRefused, WorkerError
from workers.events import Event, EventSink
from zstorage.events import RecordChanged, record_changed
from zstorage.models import Table

#: Bounds on what one dry run keeps (a handler logging in a loop must not fill the memory).
MAX_LINES = 500
MAX_ITEMS = 200
MAX_TEXT = 4_000

#: Platform loggers whose lines the capture skips: ``ctx.log`` lines are taken from the event
#: sink (without the prefix the process log adds), and the outbox's "written" line would say
#: that rolled-back rows will be published.
SKIPPED_LOGGERS = ("workers.handlers", "queues.outbox")


class DryRunAbandoned(WorkerError):
    """The dry run stopped waiting for this handler (it overran its time bound)."""


@dataclass(frozen=True)
class LogLine:
    level: str
    source: str  # "ctx.log", or the logger's name
    text: str

    def as_dict(self) -> dict[str, str]:
        return {"level": self.level, "source": self.source, "text": self.text}


@dataclass(frozen=True)
class WouldPublish:
    """A message the handler would have sent: by ``ctx.publish``, or through a table link as
    the event of one of its record writes."""

    queue: str
    body: Any
    via: str  # "ctx.publish" or "table link"
    message_id: str
    ordering_key: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def pretty(self) -> str:
        return json.dumps(self.body, indent=2, ensure_ascii=False, default=str)

    def as_dict(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "via": self.via,
            "message_id": self.message_id,
            "ordering_key": self.ordering_key,
            "headers": dict(self.headers),
            "body": self.body,
        }


@dataclass(frozen=True)
class RecordWrite:
    kind: str  # create, update, delete
    table: str
    record_id: int
    version: int
    changed_fields: list[str]
    data: dict[str, Any]

    @property
    def pretty(self) -> str:
        return json.dumps(self.data, indent=2, ensure_ascii=False, default=str)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "table": self.table,
            "record_id": self.record_id,
            "version": self.version,
            "changed_fields": self.changed_fields,
            "data": self.data,
        }


class Capture:
    """What one dry run saw. Written by its handler's thread; read by the caller once the
    handler returned (or once it stopped waiting: then ``abandoned`` is set first)."""

    def __init__(self) -> None:
        self.lines: list[LogLine] = []
        self.published: list[WouldPublish] = []
        self.events: list[RecordChanged] = []
        self.linked: list[WouldPublish] = []
        self.files: list[str] = []
        self.refused: list[str] = []
        self.notes: list[str] = []
        self.abandoned = False
        self.dropped_lines = 0

    def check(self) -> None:
        if self.abandoned:
            raise DryRunAbandoned("The dry run stopped waiting for this handler.")

    def line(self, level: str, source: str, text: str) -> None:
        if len(self.lines) >= MAX_LINES:
            self.dropped_lines += 1
            return
        self.lines.append(LogLine(level, source, text[:MAX_TEXT]))

    def record_writes(self) -> list[RecordWrite]:
        return [
            RecordWrite(
                kind=str(event.kind),
                table=event.table.slug,
                record_id=event.record_id,
                version=event.version,
                changed_fields=list(event.changed_fields),
                data=dict(event.data),
            )
            for event in self.events[:MAX_ITEMS]
        ]


class CapturedLog(EventSink):
    """``ctx.log``'s sink: its lines, kept."""

    def __init__(self, capture: Capture) -> None:
        self.capture = capture

    def emit(self, event: Event) -> None:
        self.capture.line(str(event.level), "ctx.log", event.detail)


class SandboxRecords(Records):
    """``ctx.records``, refused once the dry run is abandoned (every call names its table)."""

    def __init__(self, capture: Capture) -> None:
        self.capture = capture

    def table(self, table: Table | str) -> Table:
        self.capture.check()
        return super().table(table)


class SandboxFiles(Files):
    def __init__(self, capture: Capture) -> None:
        self.capture = capture

    def save(self, name: str, content: bytes | str | File[Any]) -> str:
        """Store nothing: note the name and size, answer ``dry-run:<name>``."""
        self.capture.check()
        if isinstance(content, str):
            size = len(content.encode())
        elif isinstance(content, File):
            size = int(content.size or 0)
        else:
            size = len(content)
        self.capture.files.append(f"{name} ({size} bytes; not stored in a dry run)")
        return f"dry-run:{name}"


class SandboxPublisher(Publisher):
    """``ctx.publish``: checked as a worker's publish is, recorded, never sent."""

    def __init__(self, capture: Capture) -> None:
        super().__init__()
        self.capture = capture

    def publish(
        self,
        queue_name: str,
        payload: Mapping[str, Any],
        *,
        ordering_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> str:
        self.capture.check()
        message, _queue = self.checked(queue_name, payload, ordering_key, headers)
        if len(self.capture.published) < MAX_ITEMS:
            self.capture.published.append(
                WouldPublish(
                    queue=queue_name,
                    body=dict(payload),
                    via="ctx.publish",
                    message_id=message.message_id,
                    ordering_key=ordering_key,
                    headers=dict(headers or {}),
                )
            )
        return message.message_id


class RefusedOutbound(Outbound):
    def __init__(self, capture: Capture) -> None:
        self.capture = capture

    def check(self, what: str) -> None:
        self.capture.check()
        self.capture.refused.append(what)
        raise SideEffectRefused(f"Not sent in a dry run: {what}.")


def sandbox(services: Services, capture: Capture) -> None:
    """Give a context (``Context``, ``BatchMessage`` or ``BatchContext``) the dry run's
    services in place of a worker's."""
    services.records = SandboxRecords(capture)
    services.files = SandboxFiles(capture)
    services.outbound = RefusedOutbound(capture)


# -- what the handler's thread does, seen from outside -------------------------------------------

_current = threading.local()


def _on_record_changed(sender: object, events: list[RecordChanged], **_: Any) -> None:
    capture: Capture | None = getattr(_current, "capture", None)
    if capture is not None:
        capture.events.extend(events)


record_changed.connect(_on_record_changed, dispatch_uid="workers.sandbox", weak=False)


class _ThreadLines(logging.Handler):
    """The ``logging`` records of one thread (the handler's), but ``SKIPPED_LOGGERS``."""

    def __init__(self, capture: Capture, thread: int) -> None:
        super().__init__(logging.DEBUG)
        self.capture = capture
        self.thread = thread

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread or record.name.startswith(SKIPPED_LOGGERS):
            return
        try:
            text = record.getMessage()
        except Exception:  # a bad format string in the handler's call: show it as it is
            text = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            text = f"{text} ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
        self.capture.line(record.levelname.lower(), record.name, text)


@contextmanager
def capturing(capture: Capture) -> Iterator[None]:
    """On the handler's thread, around the handler: record its writes' change events and its
    ``logging`` lines."""
    lines = _ThreadLines(capture, threading.get_ident())
    root = logging.getLogger()
    root.addHandler(lines)
    _current.capture = capture
    try:
        yield
    finally:
        _current.capture = None
        root.removeHandler(lines)


def outbox_mark() -> int:
    """The newest outbox row's id, taken in the dry run's transaction before the handler."""
    return int(OutboxMessage.objects.aggregate(top=Max("id"))["top"] or 0)


def linked_messages(capture: Capture, mark: int) -> list[WouldPublish]:
    """The outbox rows the handler's record writes made (read in its transaction, before the
    rollback): rows after ``mark`` whose body is the event of one of those writes (a record's
    version is written once: another transaction cannot have made the same)."""
    written = {(e.table.slug, e.record_id, e.version) for e in capture.events}
    if not written:
        return []
    keys = {f"{table}:{record}" for table, record, _ in written}
    rows = OutboxMessage.objects.filter(id__gt=mark, ordering_key__in=keys).select_related("queue")
    found = []
    for row in rows.order_by("id")[: MAX_ITEMS * 4]:
        body = row.body if isinstance(row.body, dict) else {}
        if (body.get("table"), body.get("record_id"), body.get("version")) in written:
            found.append(
                WouldPublish(
                    queue=row.queue.name,
                    body=body,
                    via="table link",
                    message_id=str(row.message_id),
                    ordering_key=row.ordering_key or None,
                )
            )
    return found[:MAX_ITEMS]
