"""What a handler gets besides its message: ``ctx``.

    @handler("sync_customer")
    def sync_customer(message, ctx):
        with ctx.lock(f"customer:{message['id']}", ttl=60), ctx.circuit("crm"):
            customer = ctx.records.get("customers", message["id"])
            push_to_crm(customer.data)
        ctx.log.info("pushed customer %s", customer.pk)
        ctx.ack()

Settling (``ack``, ``retry``, ``dead_letter``) records the handler's decision; the worker's
consumer thread carries it out with the broker when the handler returns (backends are not
thread-safe; see ``workers.runtime``). A handler that returns without settling leaves the
message to be delivered again; one that raises is retried with backoff.

A batch handler (``@handler("sync_orders", batch=100)``, see ``workers.batching``) gets a list
of ``BatchMessage`` — each a ``Context`` of its own delivery plus its ``body`` — and a
``BatchContext`` with the same services; each message is settled on its own.

ZStorage access goes through the same services as the REST API and the CRUD pages
(``zstorage.records`` for writes, ``zstorage.reads`` for reads), so a handler's writes are
validated, audited and emit the same change events (hence reach the outbox) as anyone's.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.db import transaction

from queues.backends.cache import BackendCache
from queues.messages import Delivery, OutgoingMessage
from queues.models import Queue
from workers.circuit import CircuitBreaker, Circuits, circuits
from workers.errors import AlreadySettled, MalformedMessage
from workers.events import Event, EventSink
from workers.job import Outcome
from workers.locks import DistributedLock
from workers.message import handler_of
from workers.models import EventKind, Level
from zstorage import reads, records
from zstorage.errors import RecordNotFound
from zstorage.models import Record, Table

logger = logging.getLogger("workers.handlers")


class HandlerLog:
    """``ctx.log``: lines that admins see live in the lifecycle log (and in the process log)."""

    def __init__(self, events: EventSink, queue: str, message_id: str, handler: str) -> None:
        self._events = events
        self._queue = queue
        self._message_id = message_id
        self._handler = handler

    def debug(self, message: str, *args: object) -> None:
        self._log(Level.DEBUG, logging.DEBUG, message, args)

    def info(self, message: str, *args: object) -> None:
        self._log(Level.INFO, logging.INFO, message, args)

    def warning(self, message: str, *args: object) -> None:
        self._log(Level.WARNING, logging.WARNING, message, args)

    def error(self, message: str, *args: object) -> None:
        self._log(Level.ERROR, logging.ERROR, message, args)

    def _log(self, level: Level, pylevel: int, message: str, args: tuple[object, ...]) -> None:
        text = message % args if args else message
        logger.log(pylevel, "[%s %s %s] %s", self._queue, self._handler, self._message_id, text)
        self._events.emit(
            Event(
                queue=self._queue,
                kind=EventKind.LOG,
                message_id=self._message_id,
                handler=self._handler,
                level=level,
                detail=text,
            )
        )


class Records:
    """``ctx.records``: ZStorage through its services layer. Tables by slug or instance."""

    def table(self, table: Table | str) -> Table:
        if isinstance(table, Table):
            return table
        try:
            return Table.objects.get(slug=table)
        except Table.DoesNotExist:
            raise RecordNotFound(f"No table {table!r}.") from None

    def get(self, table: Table | str, record_id: int) -> Record:
        found = self.table(table)
        try:
            return Record.objects.get(table=found, pk=record_id)
        except Record.DoesNotExist:
            raise RecordNotFound(f"No record {record_id} in table {found.slug!r}.") from None

    def search(
        self,
        table: Table | str,
        query: Any = None,
        *,
        search: str = "",
        sort: str | list[str] | None = None,
        limit: int = 100,
    ) -> list[Record]:
        """Records matching a query-language filter (and a full-text search), sorted."""
        found = self.table(table)
        fields = reads.fields_of(found)
        matching = reads.records_for(found, query=query, search=search, fields=fields)
        ordered, _ = reads.sorted_records(matching, reads.parse_sort(sort, fields), fields)
        return list(ordered[: max(0, limit)])

    def children(self, table: Table | str, record_id: int) -> dict[str, list[Record]]:
        """Records that reference this one, by ``"<table>.<field>"`` of the reference."""
        found = self.table(table)
        return {
            f"{fld.table.slug}.{fld.key}": list(children)
            for fld, children in reads.children(found, record_id)
        }

    def aggregate(
        self,
        table: Table | str,
        function: str,
        field: str | None = None,
        *,
        group_by: str | None = None,
        query: Any = None,
    ) -> list[dict[str, Any]]:
        found = self.table(table)
        fields = reads.fields_of(found)
        matching = reads.records_for(found, query=query, fields=fields)
        return reads.aggregate(matching, fields, function=function, field=field, group_by=group_by)

    def create(self, table: Table | str, data: Mapping[str, Any]) -> Record:
        return records.create_record(self.table(table), data)

    def bulk_create(self, table: Table | str, rows: Sequence[Mapping[str, Any]]) -> list[Record]:
        """Create every row or none, in one transaction (a batch handler's bulk write); a
        ``BulkInvalid`` names the rows that failed by index."""
        return records.bulk_create(self.table(table), rows)

    def update(
        self,
        table: Table | str,
        record_id: int,
        changes: Mapping[str, Any],
        *,
        expected_version: int | None = None,
        replace: bool = False,
    ) -> Record:
        return records.update_record(
            self.table(table),
            record_id,
            changes,
            expected_version=expected_version,
            replace=replace,
        )


class Files:
    """``ctx.files``: uploads to Django's default storage — the local folder ``MEDIA_ROOT`` on
    the embedded default, or the S3 bucket ``QUAYMASTER_FILES_URL`` names (django-storages;
    its URLs are signed for ``querystring_expire`` seconds unless ``querystring_auth=false``)."""

    def save(self, name: str, content: bytes | str | File[Any]) -> str:
        """Store ``content`` under ``name`` (the storage may alter it to keep it unique) and
        return its URL."""
        if isinstance(content, str):
            content = content.encode()
        payload = content if isinstance(content, File) else ContentFile(content)
        saved = default_storage.save(name, payload)
        return str(default_storage.url(saved))


class Outbound:
    """``ctx.outbound``: a handler calls ``ctx.outbound.check("POST to endpoint crm")`` right
    before an effect no transaction can undo (an HTTP request, an email). A worker lets it
    through; a dry run (``workers.sandbox``) refuses it with ``SideEffectRefused`` and shows
    what would have been done. The built-in ``webhook`` and ``send_email`` call it."""

    def check(self, what: str) -> None:
        """Return to go ahead; raise to stop the handler before the effect."""


class Publisher:
    """``ctx.publish``'s backends: one per worker thread (backends are not thread-safe), kept
    per queue in a ``BackendCache`` (a queue edited since gets a new one) and closed when the
    thread ends."""

    def __init__(self, backends: BackendCache | None = None) -> None:
        self.backends = backends if backends is not None else BackendCache(max_idle=1)

    def publish(
        self,
        queue_name: str,
        payload: Mapping[str, Any],
        *,
        ordering_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> str:
        message, queue = self.checked(queue_name, payload, ordering_key, headers)
        # A backend whose publish raised is closed, not kept (see BackendCache.lease).
        with self.backends.lease(queue) as backend, transaction.atomic():
            backend.publish([message])  # database queues: joins the handler's transaction
        # With the handling message's ids (quaymaster.logs): where the new one came from.
        logger.info(
            "ctx.publish: 1 message to %s",
            queue_name,
            extra={"to_queue": queue_name, "message_ids": [message.message_id]},
        )
        return message.message_id

    @staticmethod
    def checked(
        queue_name: str,
        payload: Mapping[str, Any],
        ordering_key: str | None,
        headers: Mapping[str, str] | None,
    ) -> tuple[OutgoingMessage, Queue]:
        """The message ``ctx.publish`` would send and its queue: a payload without a handler
        is ``MalformedMessage``, a missing queue ``Queue.DoesNotExist``, as in a worker."""
        try:
            handler_of(payload)
        except MalformedMessage as exc:
            raise MalformedMessage(f"ctx.publish to {queue_name!r}: {exc}") from None
        message = OutgoingMessage.new(dict(payload), ordering_key, headers)
        return message, Queue.objects.get(name=queue_name)

    def close(self) -> None:
        self.backends.close()


class Services:
    """What every handler gets besides its messages: ZStorage, files, locks, circuit breakers
    and publishing. Shared by ``Context`` (one delivery) and ``BatchContext`` (a batch)."""

    def __init__(
        self,
        *,
        queue: Queue,
        handler: str,
        publisher: Publisher | None = None,
        breakers: Circuits = circuits,
    ) -> None:
        self.queue = queue
        self.handler = handler
        self.records = Records()
        self.files = Files()
        self.outbound = Outbound()
        self._publisher = publisher
        self._breakers = breakers

    @property
    def max_attempts(self) -> int:
        return int(self.queue.max_attempts)

    def lock(self, name: str, *, ttl: float = 60.0, timeout: float = 10.0) -> DistributedLock:
        """A lock shared by all workers: ``with ctx.lock("customer:42", ttl=30): ...``."""
        return DistributedLock(name, ttl=ttl, timeout=timeout)

    def publish(
        self,
        queue_name: str,
        payload: Mapping[str, Any],
        *,
        ordering_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """Chain work: publish ``payload`` (with its ``handler``) to another queue; returns the
        new message's id."""
        if self._publisher is None:
            self._publisher = Publisher()
        return self._publisher.publish(
            queue_name, payload, ordering_key=ordering_key, headers=headers
        )

    def circuit(
        self, name: str, *, failure_threshold: int = 5, reset_timeout: float = 30.0
    ) -> CircuitBreaker:
        """The process's breaker for ``name``: ``with ctx.circuit("crm"): call_crm()``."""
        return self._breakers.get(
            name, failure_threshold=failure_threshold, reset_timeout=reset_timeout
        )


class Context(Services):
    """One delivery's view of the platform. Not shared between threads."""

    def __init__(
        self,
        *,
        queue: Queue,
        delivery: Delivery,
        handler: str,
        events: EventSink | None = None,
        publisher: Publisher | None = None,
        breakers: Circuits = circuits,
    ) -> None:
        super().__init__(queue=queue, handler=handler, publisher=publisher, breakers=breakers)
        self.message_id = delivery.message_id
        self.attempt = delivery.attempt
        self.headers: dict[str, str] = dict(delivery.headers)
        self.log = HandlerLog(events or EventSink(), queue.name, delivery.message_id, handler)
        self._outcome: Outcome | None = None

    @property
    def is_last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts

    @property
    def outcome(self) -> Outcome | None:
        return self._outcome

    # -- settling ---------------------------------------------------------------------------

    def ack(self) -> None:
        """Done: the message is removed from its queue when the handler returns."""
        self._settle(Outcome.ack())

    def retry(self, delay: float | None = None) -> None:
        """Deliver again in ``delay`` seconds (None: exponential backoff). Counts as an
        attempt: on the last one the message is dead-lettered instead."""
        if delay is not None and delay < 0:
            raise ValueError("A retry delay cannot be negative.")
        self._settle(Outcome.retry(delay, "The handler asked for a retry."))

    def dead_letter(self, reason: str) -> None:
        """Give up: the message goes to the dead-letter queue with ``reason``."""
        self._settle(Outcome.dead_letter(reason or "Dead-lettered by the handler."))

    def _settle(self, outcome: Outcome) -> None:
        if self._outcome is not None:
            raise AlreadySettled(
                f"Message {self.message_id} is already settled ({self._outcome.settlement})."
            )
        self._outcome = outcome


class BatchMessage(Context):
    """One message of a batch handler's list: its ``body`` and everything a single handler's
    ``ctx`` has for one delivery (``message_id``, ``attempt``, ``headers``, ``log``), with its
    own settlement: ``ack()``, ``retry(delay)``, ``dead_letter(reason)``. Each message is
    settled on its own, as if a single handler had run it."""

    def __init__(self, body: dict[str, Any], **context: Any) -> None:
        super().__init__(**context)
        self.body = body

    @property
    def settled(self) -> bool:
        return self._outcome is not None

    def __getitem__(self, key: str) -> Any:
        return self.body[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.body.get(key, default)

    def __repr__(self) -> str:
        return f"<BatchMessage {self.message_id} attempt {self.attempt}>"


class BatchContext(Services):
    """A batch handler's ``ctx``: the services every handler has, ``messages`` (the same list
    the handler got), ``log`` (lines about the batch as a whole) and ``ack_all()``."""

    def __init__(
        self,
        *,
        queue: Queue,
        handler: str,
        messages: list[BatchMessage],
        events: EventSink | None = None,
        publisher: Publisher | None = None,
        breakers: Circuits = circuits,
    ) -> None:
        super().__init__(queue=queue, handler=handler, publisher=publisher, breakers=breakers)
        self.messages = messages
        self.log = HandlerLog(events or EventSink(), queue.name, "", handler)

    @property
    def unsettled(self) -> list[BatchMessage]:
        return [message for message in self.messages if not message.settled]

    def ack_all(self) -> None:
        """Acknowledge every message not settled yet (those retried or dead-lettered first
        keep their settlement)."""
        for message in self.unsettled:
            message.ack()
