"""SQLite, the embedded default: one writer at a time, no NOTIFY (waiters poll), UUIDs stored
as 32 hex digits, datetimes adapted to text by Django's operations."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection, transaction

from queues.dialects.base import Dialect, OutboxHead, Renewal
from queues.models import OutboxMessage, OutboxState, RelayLease

OUTBOX = OutboxMessage._meta.db_table
LEASES = RelayLease._meta.db_table

OUTBOX_HEAD = (
    "SELECT id, message_id, ordering_key, body, attempts, available_at <= %s, priority "
    f"FROM {OUTBOX} WHERE queue_id = %s AND state = %s ORDER BY id LIMIT %s"
)
MARK_PUBLISHED = f"UPDATE {OUTBOX} SET state = %s, published_at = %s, broker_ref = %s WHERE id = %s"
RENEW_LEASE = f"UPDATE {LEASES} SET expires_at = %s WHERE queue_id = %s AND owner = %s"


class SQLite(Dialect):
    vendor = "sqlite"

    def outbox_head(
        self, queue_id: int, now: dt.datetime, limit: int, skip: set[int]
    ) -> list[OutboxHead]:
        at = connection.ops.adapt_datetimefield_value(now)
        with connection.cursor() as cursor:
            cursor.execute(
                OUTBOX_HEAD, [at, queue_id, OutboxState.PENDING.value, limit + len(skip)]
            )
            found = [row for row in cursor.fetchall() if row[0] not in skip][:limit]
        return [
            (pk, str(uuid.UUID(mid)), key, json.loads(body), tries, bool(due), priority)
            for pk, mid, key, body, tries, due, priority in found
        ]

    def mark_published(
        self, marks: Sequence[tuple[int, Any]], at: dt.datetime, renewal: Renewal | None
    ) -> bool:
        adapt = connection.ops.adapt_datetimefield_value
        published = OutboxState.PUBLISHED.value
        when = adapt(at)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(
                MARK_PUBLISHED, [(published, when, json.dumps(ref), pk) for pk, ref in marks]
            )
            if renewal is None:
                return True
            cursor.execute(
                RENEW_LEASE, [adapt(renewal.expires_at), renewal.queue_id, renewal.owner]
            )
            return bool(cursor.rowcount == 1)

    def insert_many(
        self,
        cursor: Any,
        table: str,
        columns: Sequence[str],
        rows: Iterable[tuple[Any, ...]],
        batch_size: int = 500,
    ) -> None:
        adapt = connection.ops.adapt_datetimefield_value
        names = ", ".join(connection.ops.quote_name(c) for c in columns)
        placeholders = ", ".join(["%s"] * len(columns))
        sql = f"INSERT INTO {connection.ops.quote_name(table)} ({names}) VALUES ({placeholders})"
        values = [tuple(adapt(v) if isinstance(v, dt.datetime) else v for v in row) for row in rows]
        for start in range(0, len(values), batch_size):
            cursor.executemany(sql, values[start : start + batch_size])
