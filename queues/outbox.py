"""The transactional outbox: ZStorage's write seam turned into outbox rows.

``on_record_changed`` runs inside the record's transaction (see ``zstorage.events``): it
writes one ``OutboxMessage`` per enabled link whose kind and filter match, so nothing reaches
a broker before commit and a rollback leaves nothing. On PostgreSQL one NOTIFY per
transaction wakes the relay: issued inside the transaction, in the same statement as the first
outbox INSERT (PostgreSQL delivers a NOTIFY only when its transaction commits, and drops it
with a rollback, of a savepoint too), so a write pays no round trip after its commit.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from queues.models import OutboxMessage, OutboxState, QueueLink
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
    if not rows:
        return
    if connection.vendor != "postgresql":
        OutboxMessage.objects.bulk_create(rows)  # SQLite: relays poll, nothing to notify
        return
    _insert_and_notify(rows)


def _insert_and_notify(rows: list[OutboxMessage]) -> None:
    """One round trip: the rows, plus this transaction's NOTIFY unless it already has one."""
    table = OutboxMessage._meta.db_table
    now = timezone.now()
    values = ", ".join(["(%s, %s, %s, %s::jsonb, %s, 0, '', %s, %s)"] * len(rows))
    params: list[Any] = []
    for row in rows:
        params += [
            row.message_id,
            row.queue_id,
            row.ordering_key,
            json.dumps(row.body),
            OutboxState.PENDING.value,
            now,
            now,
        ]
    sql = (
        f"INSERT INTO {table} (message_id, queue_id, ordering_key, body, state, attempts, "
        f"last_error, available_at, created_at) VALUES {values}"
    )
    notify = not _notified()
    with connection.cursor() as cursor:
        # Django's default client-side binding sends both statements at once; server-side
        # binding (OPTIONS server_side_binding) prepares one statement at a time.
        together = notify and _client_side_binding(cursor)
        cursor.execute(f"{sql}; NOTIFY {NOTIFY_CHANNEL}" if together else sql, params)
        if notify and not together:
            cursor.execute(f"NOTIFY {NOTIFY_CHANNEL}")
    if notify:
        _mark_notified()


def _client_side_binding(cursor: Any) -> bool:
    import psycopg

    return isinstance(getattr(cursor, "cursor", None), psycopg.ClientCursor)


def _notified() -> bool:
    """This transaction already carries a NOTIFY (a no-op on-commit callback marks it: Django
    drops it with a rolled-back savepoint, as PostgreSQL drops the NOTIFY)."""
    return connection.in_atomic_block and any(
        entry[1] is _notified_marker for entry in connection.run_on_commit
    )


def _notified_marker() -> None:
    pass


def _mark_notified() -> None:
    if connection.in_atomic_block:
        transaction.on_commit(_notified_marker)


def notify_at_commit() -> None:
    """Wake relays once per transaction, when it commits (never for a rollback)."""
    if connection.vendor != "postgresql" or _notified():
        return  # SQLite: relays poll
    with connection.cursor() as cursor:
        cursor.execute(f"NOTIFY {NOTIFY_CHANNEL}")
    _mark_notified()
