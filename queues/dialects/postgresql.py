"""PostgreSQL, production: NOTIFY/LISTEN wake-ups, ``FOR UPDATE SKIP LOCKED`` claims,
``COPY`` for bulk rows, advisory locks, and jsonb to mark a batch in one statement.

NOTIFY is delivered only when its transaction commits and dropped with a rollback (of a
savepoint too), so issuing it inside the writer's transaction costs no round trip after the
commit and never wakes anyone for nothing. ``notify_at_commit`` and ``insert_outbox`` send one
per transaction: a no-op on-commit callback marks a transaction that already carries one
(Django drops it with a rolled-back savepoint, as PostgreSQL drops the NOTIFY).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from queues.dialects.base import Dialect, Listener, NewOutboxRow, OutboxHead, Renewal
from queues.models import MessageTrace, OutboxMessage, OutboxState, RelayLease

OUTBOX = OutboxMessage._meta.db_table
LEASES = RelayLease._meta.db_table
TRACES = MessageTrace._meta.db_table

# The rows to skip (a batch in flight) are left out by the server: sent over and dropped
# here, they doubled what a read-ahead carried.
OUTBOX_HEAD = (
    f"SELECT id, message_id::text, ordering_key, body::text, attempts, available_at <= %s, "
    "priority "
    f"FROM {OUTBOX} WHERE queue_id = %s AND state = %s AND NOT (id = ANY(%s)) "
    "ORDER BY id LIMIT %s"
)
# One statement for the marks and the lease, the references as one JSON document: Django's
# bulk_update builds a CASE per row and column (89% of relay time when profiled), and arrays
# of values are quoted one element at a time in Python.
MARK_PUBLISHED_AND_RENEW = (
    f"WITH marked AS (UPDATE {OUTBOX} AS o "
    "SET state = %s, published_at = %s, broker_ref = v.ref "
    "FROM jsonb_to_recordset(%s::jsonb) AS v(id bigint, ref jsonb) "
    "WHERE o.id = v.id RETURNING 1), "
    f"renewed AS (UPDATE {LEASES} SET expires_at = %s "
    "WHERE queue_id = %s AND owner = %s RETURNING 1) "
    "SELECT (SELECT count(*) FROM renewed)"
)
# The same, writing each row's trace too: the table, record and version come from the body
# in SQL (the relay never parses bodies), as text in the UPDATE's RETURNING (handing the whole
# body to the INSERT cost half again), taken only when the ordering key is that record's
# (``queues.outbox.ordering_key``). A message sent again keeps its row, with the newest id.
MARK_TRACE_AND_RENEW = (
    f"WITH marked AS (UPDATE {OUTBOX} AS o "
    "SET state = %s, published_at = %s, broker_ref = v.ref "
    "FROM jsonb_to_recordset(%s::jsonb) AS v(id bigint, ref jsonb, key text) "
    "WHERE o.id = v.id RETURNING o.message_id, o.queue_id, v.key, "
    "CASE WHEN o.body->>'record_id' ~ '^[0-9]{1,18}$' "
    "AND o.ordering_key = (o.body->>'table') || ':' || (o.body->>'record_id') "
    "THEN o.body->>'table' END AS tbl, o.body->>'record_id' AS rid, o.body->>'version' AS ver), "
    f"traced AS (INSERT INTO {TRACES} (message_id, queue_id, source, broker_id, "
    'published_at, "table", record_id, version) '
    "SELECT message_id, queue_id, 'outbox', left(key, 200), %s, coalesce(left(tbl, 63), ''), "
    "CASE WHEN tbl IS NOT NULL THEN rid::bigint END, "
    "CASE WHEN tbl IS NOT NULL AND ver ~ '^[0-9]{1,9}$' THEN ver::integer END "
    "FROM marked ON CONFLICT (message_id) DO UPDATE "
    "SET broker_id = EXCLUDED.broker_id, published_at = EXCLUDED.published_at RETURNING 1), "
    f"renewed AS (UPDATE {LEASES} SET expires_at = %s "
    "WHERE queue_id = %s AND owner = %s RETURNING 1) "
    "SELECT (SELECT count(*) FROM renewed)"
)
# The rows as one JSON document, in order: one parameter, whatever the number of rows
# (psycopg parses a statement's text for its placeholders, which for a thousand rows of
# VALUES cost more than the INSERT).
INSERT_OUTBOX = (
    f"INSERT INTO {OUTBOX} (message_id, queue_id, ordering_key, body, state, attempts, "
    "last_error, available_at, created_at) "
    "SELECT v.message_id, v.queue_id, v.ordering_key, v.body, %s, 0, '', %s, %s "
    "FROM ROWS FROM (jsonb_to_recordset(%s::jsonb) "
    "AS (message_id uuid, queue_id bigint, ordering_key text, body jsonb)) "
    "WITH ORDINALITY AS v(message_id, queue_id, ordering_key, body, n) ORDER BY v.n"
)
NOTIFY_QUEUE = "SELECT pg_notify(%s, '')"
TRY_ADVISORY_LOCK = "SELECT pg_try_advisory_lock(%s)"
ADVISORY_UNLOCK = "SELECT pg_advisory_unlock(%s)"


class PostgreSQL(Dialect):
    vendor = "postgresql"
    listens = True
    advisory_locks = True
    row_locks = True

    # -- the relay ----------------------------------------------------------------------------

    def outbox_head(
        self, queue_id: int, now: dt.datetime, limit: int, skip: set[int]
    ) -> list[OutboxHead]:
        with connection.cursor() as cursor:
            cursor.execute(
                OUTBOX_HEAD, [now, queue_id, OutboxState.PENDING.value, list(skip), limit]
            )
            # The body as jsonb's text: the relay sends it unchanged (decoding and encoding
            # it again was the largest Python cost in the relay's profile).
            return cursor.fetchall()

    def mark_published(
        self,
        marks: Sequence[tuple[int, Any, str]],
        at: dt.datetime,
        renewal: Renewal | None,
        traced: bool = True,
    ) -> bool:
        lease: list[Any] = [None, None, None]  # renews nothing (queue_id = NULL matches no row)
        if renewal is not None:
            lease = [renewal.expires_at, renewal.queue_id, renewal.owner]
        published = OutboxState.PUBLISHED.value
        if traced:
            refs = json.dumps([{"id": pk, "ref": ref, "key": key} for pk, ref, key in marks])
            sql, params = MARK_TRACE_AND_RENEW, [published, at, refs, at, *lease]
        else:
            refs = json.dumps([{"id": pk, "ref": ref} for pk, ref, _ in marks])
            sql, params = MARK_PUBLISHED_AND_RENEW, [published, at, refs, *lease]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            (renewed,) = cursor.fetchone()
        return renewal is None or renewed == 1

    # -- the outbox and wake-ups ----------------------------------------------------------------

    def insert_outbox(self, rows: Sequence[NewOutboxRow], channel: str) -> None:
        """One round trip: the rows, plus this transaction's NOTIFY unless it already has one."""
        now = timezone.now()
        document = json.dumps(
            [
                {"message_id": str(m), "queue_id": q, "ordering_key": k, "body": b}
                for m, q, k, b in rows
            ]
        )
        params: list[Any] = [OutboxState.PENDING.value, now, now, document]
        sql = INSERT_OUTBOX
        notify = not _notified()
        with connection.cursor() as cursor:
            # Django's default client-side binding sends both statements at once; server-side
            # binding (OPTIONS server_side_binding) prepares one statement at a time.
            together = notify and _client_side_binding(cursor)
            cursor.execute(f'{sql}; NOTIFY "{channel}"' if together else sql, params)
            if notify and not together:
                cursor.execute(f'NOTIFY "{channel}"')
        if notify:
            _mark_notified()

    def notify_at_commit(self, channel: str) -> None:
        if _notified():
            return
        with connection.cursor() as cursor:
            cursor.execute(f'NOTIFY "{channel}"')
        _mark_notified()

    def notify(self, channel: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(NOTIFY_QUEUE, [channel])

    def listen(self, channel: str) -> Listener:
        """A psycopg connection of its own with Django's settings, in autocommit so
        notifications arrive as soon as their transaction commits. Raises ``psycopg.Error``
        when the database is unreachable."""
        import psycopg

        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        session = psycopg.connect(**params, autocommit=True)
        try:
            session.execute(f'LISTEN "{channel}"')
        except psycopg.Error:
            session.close()
            raise
        return PostgresListener(session)

    # -- the database queue -----------------------------------------------------------------------

    def locked(self, rows: QuerySet[Any]) -> QuerySet[Any]:
        return rows.select_for_update()

    def claimable(self, candidates: QuerySet[Any]) -> QuerySet[Any]:
        return candidates.select_for_update(skip_locked=True)

    # -- bulk writes and locks --------------------------------------------------------------------

    def insert_many(
        self,
        cursor: Any,
        table: str,
        columns: Sequence[str],
        rows: Iterable[tuple[Any, ...]],
        batch_size: int = 500,
    ) -> None:
        quote = connection.ops.quote_name
        names = ", ".join(quote(c) for c in columns)
        with cursor.cursor.copy(f"COPY {quote(table)} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def try_advisory_lock(self, key: int) -> bool:
        with connection.cursor() as cursor:
            cursor.execute(TRY_ADVISORY_LOCK, [key])
            row = cursor.fetchone()
        return bool(row and row[0])

    def advisory_unlock(self, key: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute(ADVISORY_UNLOCK, [key])


class PostgresListener(Listener):
    def __init__(self, session: Any) -> None:
        self.session = session

    def wait(self, seconds: float) -> None:
        for _ in self.session.notifies(timeout=seconds, stop_after=1):
            pass

    def close(self) -> None:
        self.session.close()


def _client_side_binding(cursor: Any) -> bool:
    import psycopg

    return isinstance(getattr(cursor, "cursor", None), psycopg.ClientCursor)


def _notified() -> bool:
    """This transaction already carries a NOTIFY (see the module docstring)."""
    return connection.in_atomic_block and any(
        entry[1] is _notified_marker for entry in connection.run_on_commit
    )


def _notified_marker() -> None:
    pass


def _mark_notified() -> None:
    if connection.in_atomic_block:
        transaction.on_commit(_notified_marker)
