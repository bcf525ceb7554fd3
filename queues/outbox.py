"""The transactional outbox: ZStorage's write seam turned into outbox rows.

``on_record_changed`` runs inside the record's transaction (see ``zstorage.events``): it
writes one ``OutboxMessage`` per enabled link whose kind and filter match, so nothing reaches
a broker before commit and a rollback leaves nothing. After commit, one NOTIFY per
transaction wakes the relay on PostgreSQL.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import connection, transaction

from queues.models import OutboxMessage, QueueLink
from zstorage.events import RecordChanged
from zstorage.query import compile_query

NOTIFY_CHANNEL = "quaymaster_outbox"


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


def ordering_key(event: RecordChanged) -> str:
    return f"{event.table.slug}:{event.record_id}"


def on_record_changed(sender: object, event: RecordChanged, **_: Any) -> None:
    links = [
        link
        for link in QueueLink.objects.filter(table=event.table, enabled=True, queue__enabled=True)
        if link.publishes(str(event.kind))
    ]
    if not links:
        return
    # The schema is read only when a link filters: most links publish every record.
    fields = list(event.table.fields.all()) if any(link.filter for link in links) else []
    rows = []
    for link in links:
        if link.filter and not compile_query(link.filter, fields).matches(
            event.data, record_id=event.record_id
        ):
            continue
        message_id = uuid.uuid4()
        rows.append(
            OutboxMessage(
                message_id=message_id,
                queue_id=link.queue_id,
                ordering_key=ordering_key(event),
                body=event_message(event, link, message_id),
            )
        )
    if rows:
        OutboxMessage.objects.bulk_create(rows)
        notify_after_commit()


def _notify() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"NOTIFY {NOTIFY_CHANNEL}")


def notify_after_commit() -> None:
    """Wake relays once per transaction, after it commits (never for a rollback)."""
    if connection.vendor != "postgresql":
        return  # SQLite: relays poll
    if any(entry[1] is _notify for entry in connection.run_on_commit):
        return
    transaction.on_commit(_notify)
