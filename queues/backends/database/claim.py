"""The database queue's claim and its lease: which rows a fetch takes, and which rows a
settlement may still touch.

* Claim: ready rows, and in-flight rows whose lease expired (the visibility timeout), with
  ``available_at <= now``, highest priority first, then oldest id (the order of the ``queue,
  -priority, id`` index, so a claim reads that index from its start: ``EXPLAIN`` shows an
  index scan, no sort). PostgreSQL locks the candidates with ``FOR UPDATE SKIP LOCKED`` so
  concurrent claimers never wait for, nor share, a row. SQLite has one writer at a time (the
  settings open IMMEDIATE transactions), and the UPDATE repeats the claimable condition as a
  guard.
* A row already delivered ``max_attempts`` times is moved to ``dead`` instead of claimed.
* A claim sets a fresh lease token: ``leased`` selects a row only while it still carries the
  token of the delivery at hand.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from queues.dialects import dialect
from queues.messages import Delivery
from queues.models import DatabaseMessage, MessageState

CLAIMABLE = (MessageState.READY, MessageState.IN_FLIGHT)
#: The claim's order, the one of the ``queues_dbmessage_priority`` index.
CLAIM_ORDER = ("-priority", "id")


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


def claim(
    queue_id: int, owner: str, limit: int, max_attempts: int, visibility_timeout: int
) -> list[Delivery]:
    """Lease up to ``limit`` claimable rows to ``owner``, highest priority first, then oldest;
    rows out of attempts go to ``dead`` on the way."""
    now = timezone.now()
    token = uuid.uuid4()
    claimable = rows(queue_id).filter(state__in=CLAIMABLE, available_at__lte=now)
    with transaction.atomic():
        candidates = claimable.order_by(*CLAIM_ORDER)
        candidates = dialect().claimable(candidates)  # PostgreSQL: FOR UPDATE SKIP LOCKED
        picked = list(candidates.values_list("id", "attempts")[:limit])
        exhausted = [row_id for row_id, attempts in picked if attempts >= max_attempts]
        wanted = [row_id for row_id, attempts in picked if attempts < max_attempts]
        if exhausted:
            claimable.filter(id__in=exhausted).update(
                state=MessageState.DEAD,
                lease_token=None,
                lease_owner="",
                last_error=f"Gave up after {max_attempts} attempt(s) without an "
                "acknowledgement (max_attempts).",
            )
        if not wanted:
            return []
        # On SQLite the repeated claimable condition is the guard; on PostgreSQL the rows
        # are already locked by this transaction.
        claimable.filter(id__in=wanted).update(
            state=MessageState.IN_FLIGHT,
            lease_token=token,
            lease_owner=owner,
            available_at=now + timedelta(seconds=visibility_timeout),
            attempts=F("attempts") + 1,
        )
        claimed = list(
            rows(queue_id)
            .filter(id__in=wanted, lease_token=token)
            .order_by(*CLAIM_ORDER)
            .values_list("id", "message_id", "body", "headers", "ordering_key", "attempts")
        )
    return [
        Delivery(
            message_id=str(message_id),
            body=json_bytes(body),
            attempt=attempts,
            headers=dict(headers or {}),
            handle=DatabaseHandle(row_id, token),
            ordering_key=ordering_key or None,
        )
        for row_id, message_id, body, headers, ordering_key, attempts in claimed
    ]


def delete_leased(queue_id: int, tokens: dict[int, uuid.UUID]) -> set[int]:
    """Delete, in one transaction, the rows of ``tokens`` (row id → lease token) still leased
    with that token; returns the ids deleted."""
    with transaction.atomic():
        leased = rows(queue_id).filter(pk__in=list(tokens), state=MessageState.IN_FLIGHT)
        locked = dialect().locked(leased)
        held = [pk for pk, token in locked.values_list("pk", "lease_token") if tokens[pk] == token]
        if held:
            rows(queue_id).filter(pk__in=held).delete()
    return set(held)
