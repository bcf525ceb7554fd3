"""The transactional outbox: ZStorage's write seam turned into outbox rows.

``on_record_changed`` runs inside the record's transaction (see ``zstorage.events``): it
writes one ``OutboxMessage`` per enabled link whose kind and filter match, so nothing reaches
a broker before commit and a rollback leaves nothing. On PostgreSQL one NOTIFY per
transaction wakes the relay: issued inside the transaction, in the same statement as the first
outbox INSERT (PostgreSQL delivers a NOTIFY only when its transaction commits, and drops it
with a rollback, of a savepoint too), so a write pays no round trip after its commit. The SQL
is the dialect's (``queues.dialects``).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from queues.dialects import NewOutboxRow, dialect
from queues.models import QueueLink
from zstorage.events import RecordChanged
from zstorage.query import compile_query
from zstorage.schema_cache import schema_for

NOTIFY_CHANNEL = "quaymaster_outbox"
log = logging.getLogger("queues.outbox")


def event_message(event: RecordChanged, link: QueueLink, message_id: uuid.UUID) -> dict[str, Any]:
    """The message a handler receives for a record event."""
    actor = event.actor.get_username() if event.actor is not None else None
    return {
        "handler": link.handler,
        "message_id": str(message_id),
        "event": str(event.kind),
        "table": event.table.slug,
        "record_id": event.record_id,
        "version": event.version,
        "data": event.data,
        "changed_fields": event.changed_fields,
        "actor": actor,
        "time": event.at.isoformat(),
    }


def replay_message(
    *,
    handler: str,
    message_id: uuid.UUID,
    replay_id: uuid.UUID,
    table: str,
    record_id: int,
    version: int,
    data: dict[str, Any],
    actor: str | None,
    time: dt.datetime,
    replayed_at: dt.datetime,
) -> dict[str, Any]:
    """The message of a record's current version sent again by a replay (``queues.replay``):
    an event's shape with ``event: "replay"``, the replay's id, ``time`` the version's and
    ``replayed_at`` when the replay wrote it; ``actor`` started the replay."""
    return {
        "handler": handler,
        "message_id": str(message_id),
        "event": "replay",
        "replay_id": str(replay_id),
        "table": table,
        "record_id": record_id,
        "version": version,
        "data": data,
        "changed_fields": [],
        "actor": actor,
        "time": time.isoformat(),
        "replayed_at": replayed_at.isoformat(),
    }


def ordering_key(event: RecordChanged) -> str:
    return record_key(event.table.slug, event.record_id)


def record_key(table: str, record_id: int) -> str:
    """One record's ordering key: its events (replays too) reach the broker in order."""
    return f"{table}:{record_id}"


@dataclass(frozen=True, slots=True)
class Route:
    """An enabled link of an enabled queue, with its filter compiled (None: every record)."""

    link: QueueLink
    query: Any

    def matches(self, event: RecordChanged) -> bool:
        return self.query is None or bool(self.query.matches(event.data, record_id=event.record_id))


def routes(event: RecordChanged) -> list[Route]:
    """The table's links as of its schema token, kept with its cached schema (a link or queue
    change gives the table a new token by trigger, migration ``queues/0005``)."""
    schema = schema_for(event.table)
    found: list[Route] | None = schema.extras.get("queues.routes")
    if found is None:
        links = QueueLink.objects.filter(table_id=event.table.pk, enabled=True, queue__enabled=True)
        fields = list(schema.fields.values())
        found = [
            Route(link, compile_query(link.filter, fields) if link.filter else None)
            for link in links
        ]
        schema.extras["queues.routes"] = found
    return found


def on_record_changed(sender: object, events: list[RecordChanged], **_: Any) -> None:
    if not events:
        return
    rows = []
    for event in events:
        kind = str(event.kind)
        for route in routes(event):
            link = route.link
            if not link.publishes(kind) or not route.matches(event):
                continue
            message_id = uuid.uuid4()
            body = event_message(event, link, message_id)
            rows.append(NewOutboxRow(message_id, link.queue_id, ordering_key(event), body))
    if not rows:
        return
    dialect().insert_outbox(rows, NOTIFY_CHANNEL)  # PostgreSQL: with one NOTIFY per transaction
    # With the request's id (quaymaster.logs): the relay and the workers log these ids too.
    log.info(
        "outbox: %d message(s) written, published once the transaction commits",
        len(rows),
        extra={"message_ids": [str(row.message_id) for row in rows]},
    )


def notify_at_commit() -> None:
    """Wake relays once per transaction, when it commits (never for a rollback); on SQLite
    relays poll."""
    dialect().notify_at_commit(NOTIFY_CHANNEL)
