"""The database queue's claim and its lease: which rows a fetch takes, and which rows a
settlement may still touch.

* Claim: ready rows, and in-flight rows whose lease expired (the visibility timeout), with
  ``available_at <= now``, highest priority first, then oldest id (the order of the ``queue,
  -priority, id`` index, so a claim reads that index from its start: ``EXPLAIN`` shows an
  index scan, no sort). PostgreSQL locks the candidates with ``FOR UPDATE SKIP LOCKED`` so
  concurrent claimers never wait for, nor share, a row. SQLite has one writer at a time. The
  claim is one ``UPDATE … RETURNING`` (``CLAIM``), and an acknowledgement of a batch one
  ``DELETE … RETURNING`` (``delete_leased``): one round trip each, no transaction around
  them, and on SQLite the write lock held for one statement (the ORM's read, update and
  re-read in an IMMEDIATE transaction held it for three, with Python in between). Both
  vendors take the same text; only the lock clause differs (``Dialect.row_locks``).
* A row already delivered ``max_attempts`` times is moved to ``dead`` instead of claimed.
* A claim sets a fresh lease token: ``leased`` selects a row only while it still carries the
  token of the delivery at hand.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from queues.dialects import dialect
from queues.messages import Delivery
from queues.models import DatabaseMessage, MessageState

TABLE = DatabaseMessage._meta.db_table
#: The claim, one statement in autocommit (one round trip; on SQLite the write lock is held
#: for that statement alone): the candidates are read in the order of the
#: ``queues_dbmessage_priority`` index (``queue, -priority, id``: an index scan, no sort),
#: locked with ``FOR UPDATE SKIP LOCKED`` where the vendor has row locks, and each is leased,
#: or moved to ``dead`` when it has had its ``max_attempts`` deliveries. Repeating the
#: claimable condition in the subquery is SQLite's guard (one writer at a time, and the
#: statement is that writer).
CLAIM = (
    f"UPDATE {TABLE} SET "
    "state = CASE WHEN attempts >= %s THEN %s ELSE %s END, "
    "lease_token = CASE WHEN attempts >= %s THEN NULL ELSE %s END, "
    "lease_owner = CASE WHEN attempts >= %s THEN '' ELSE %s END, "
    "last_error = CASE WHEN attempts >= %s THEN %s ELSE last_error END, "
    "available_at = CASE WHEN attempts >= %s THEN available_at ELSE %s END, "
    "attempts = CASE WHEN attempts >= %s THEN attempts ELSE attempts + 1 END "
    f"WHERE id IN (SELECT id FROM {TABLE} WHERE queue_id = %s AND state IN (%s, %s) "
    "AND available_at <= %s ORDER BY priority DESC, id LIMIT %s{lock}) "
    "RETURNING id, message_id, body, headers, ordering_key, attempts, priority, state"
)
#: Whether ``CLAIM`` would find a row (its candidates' condition and parameters).
ANY_CLAIMABLE = (
    f"SELECT 1 FROM {TABLE} WHERE queue_id = %s AND state IN (%s, %s) AND available_at <= %s "
    "LIMIT 1"
)


@dataclass(frozen=True)
class DatabaseHandle:
    row_id: int
    lease_token: uuid.UUID


def rows(queue_id: int) -> Any:
    """Every message row of one queue."""
    return DatabaseMessage.objects.filter(queue_id=queue_id)


def leased(queue_id: int, handle: DatabaseHandle) -> Any:
    """The delivery's row while its lease is still ours (else nothing)."""
    return rows(queue_id).filter(
        pk=handle.row_id, lease_token=handle.lease_token, state=MessageState.IN_FLIGHT
    )


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def claim_statement(
    queue_id: int,
    owner: str,
    limit: int,
    max_attempts: int,
    visibility_timeout: int,
    now: datetime,
    token: uuid.UUID,
) -> tuple[str, list[Any]]:
    """``CLAIM`` and its parameters (the index test explains the same statement)."""
    adapt = connection.ops.adapt_datetimefield_value
    lock = " FOR UPDATE SKIP LOCKED" if dialect().row_locks else ""
    gave_up = f"Gave up after {max_attempts} attempt(s) without an acknowledgement (max_attempts)."
    out = max_attempts  # each CASE asks "out of attempts?"
    params = [
        *(out, MessageState.DEAD.value, MessageState.IN_FLIGHT.value),  # state
        *(out, _uuid(token)),  # lease_token
        *(out, owner),  # lease_owner
        *(out, gave_up),  # last_error
        *(out, adapt(now + timedelta(seconds=visibility_timeout))),  # available_at
        out,  # attempts
        *(queue_id, MessageState.READY.value, MessageState.IN_FLIGHT.value, adapt(now), limit),
    ]
    return CLAIM.format(lock=lock), params


def claim(
    queue_id: int, owner: str, limit: int, max_attempts: int, visibility_timeout: int
) -> list[Delivery]:
    """Lease up to ``limit`` claimable rows to ``owner``, highest priority first, then oldest;
    rows out of attempts go to ``dead`` on the way. One statement (see ``CLAIM``)."""
    token = uuid.uuid4()
    now = timezone.now()
    sql, params = claim_statement(
        queue_id, owner, limit, max_attempts, visibility_timeout, now, token
    )
    with connection.cursor() as cursor:
        if not dialect().row_locks:
            # One writer at a time (SQLite): an UPDATE takes the write lock even when it
            # matches nothing, and a worker with handlers running looks several times per
            # message. A read (which never waits in WAL mode) sees first whether to bother.
            cursor.execute(ANY_CLAIMABLE, params[-5:-1])  # the candidates' parameters
            if cursor.fetchone() is None:
                return []
        cursor.execute(sql, params)
        returned = cursor.fetchall()
    leased = MessageState.IN_FLIGHT.value
    claimed = sorted(  # RETURNING has no order
        (row for row in returned if row[7] == leased), key=lambda row: (-row[6], row[0])
    )
    return [
        Delivery(
            message_id=_uuid_text(message_id),
            body=json_bytes(_json(body)),
            attempt=attempts,
            headers=dict(_json(headers) or {}),
            handle=DatabaseHandle(row_id, token),
            ordering_key=ordering_key or None,
        )
        for row_id, message_id, body, headers, ordering_key, attempts, _, _ in claimed
    ]


def delete_leased(queue_id: int, tokens: dict[int, uuid.UUID]) -> set[int]:
    """Delete, in one statement, the rows of ``tokens`` (row id → lease token) still leased
    with that token; returns the ids deleted."""
    return _on_leased(f"DELETE FROM {TABLE}", [], queue_id, tokens)


def renew_leased(queue_id: int, tokens: dict[int, uuid.UUID], seconds: float) -> set[int]:
    """Extend the leases of the rows of ``tokens`` still leased with that token to ``seconds``
    from now; returns the ids extended."""
    until = connection.ops.adapt_datetimefield_value(timezone.now() + timedelta(seconds=seconds))
    return _on_leased(f"UPDATE {TABLE} SET available_at = %s", [until], queue_id, tokens)


def release_leased(queue_id: int, tokens: dict[int, uuid.UUID]) -> set[int]:
    """Give back rows claimed but never handed to a handler (a prefetch buffer's): ready now,
    without the attempt their claim counted; returns the ids given back."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    set_ready = (
        f"UPDATE {TABLE} SET state = %s, lease_token = NULL, lease_owner = '', "
        "available_at = %s, attempts = attempts - 1"
    )
    return _on_leased(set_ready, [MessageState.READY.value, now], queue_id, tokens)


def _on_leased(
    statement: str, values: list[Any], queue_id: int, tokens: dict[int, uuid.UUID]
) -> set[int]:
    """``statement`` (an UPDATE's SET, or a DELETE) on the rows of ``tokens`` still in flight
    under that token, as one statement; returns the ids it touched."""
    if not tokens:
        return set()
    by_token: dict[uuid.UUID, list[int]] = {}
    for pk, token in tokens.items():
        by_token.setdefault(token, []).append(pk)
    # A claim leases its rows with one token: a batch of acks holds a few tokens, not one each.
    matches = []
    params: list[Any] = [*values, queue_id, MessageState.IN_FLIGHT.value]
    for token, pks in by_token.items():
        matches.append(f"(lease_token = %s AND id IN ({', '.join(['%s'] * len(pks))}))")
        params += [_uuid(token), *pks]
    where = f"WHERE queue_id = %s AND state = %s AND ({' OR '.join(matches)}) RETURNING id"
    with connection.cursor() as cursor:
        cursor.execute(f"{statement} {where}", params)
        return {row[0] for row in cursor.fetchall()}


def _uuid(value: uuid.UUID) -> Any:
    """A UUID as the column takes it (SQLite stores 32 hex digits)."""
    return value if connection.features.has_native_uuid_field else value.hex


def _uuid_text(value: Any) -> str:
    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(value))


def _json(value: Any) -> Any:
    """A JSON column read by a raw cursor: text (SQLite, Django's psycopg) or already loaded."""
    return json.loads(value) if isinstance(value, str | bytes) else value
