"""The ``database`` queue type, the embedded default: messages are ``DatabaseMessage`` rows.

All of this queue's SQL lives here. A message is one row with a few states:

    ready ──claim──► in_flight ──ack──► (row deleted)
      ▲                 │  ├──retry_later──► ready (available_at = now + delay)
      └──lease expired──┘  └──dead_letter──► dead (last_error = reason)

* Claim: ready rows, and in-flight rows whose lease expired (the visibility timeout), with
  ``available_at <= now``, oldest id first. PostgreSQL locks the candidates with
  ``FOR UPDATE SKIP LOCKED`` so concurrent claimers never wait for, nor share, a row. SQLite
  has one writer at a time (the settings open IMMEDIATE transactions), and the UPDATE repeats
  the claimable condition as a guard.
* A claim sets a fresh lease token; ack, retry_later, dead_letter and extend only touch the row
  while it still carries that token, so a worker whose lease expired and was re-claimed by
  another gets ``LeaseLost`` instead of acknowledging someone else's delivery.
* Like SQS's redrive policy, a row already delivered ``max_attempts`` times is moved to
  ``dead`` when it would be claimed again (a worker that keeps crashing on it cannot loop).
* Acknowledged rows are deleted at once rather than marked done: the table stays as small as
  the backlog, which keeps the claim index small and gives vacuum little to do. The dead-letter
  queue is the ``dead`` rows of the same queue.
* Dead letters are read, sent back (``ready``, attempts 0, available now) and deleted with one
  statement each; purging deletes the ``ready`` rows (in-flight rows stay with their handler).
* Publishing inserts in the caller's transaction: a rolled-back caller publishes nothing. A
  message id already in the queue is not inserted twice (its row id is returned); once acked
  (deleted), the same id can be published again.
* Wake-up: on PostgreSQL publishing also sends ``NOTIFY quaymaster_queue_<id>`` (delivered
  when the transaction commits) and a waiting ``fetch`` LISTENs on it, so a worker claims a
  new message at once instead of at its next poll (every 0.2 s, still the fallback and the
  only way on SQLite, and what finds retries whose delay ran out).

Times come from the application's clock (``timezone.now()``), not the database's: in a
transaction PostgreSQL's ``now()`` is the transaction's start time.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.db.models import Count, F
from django.utils import timezone

from queues.backends.base import (
    MIB,
    Backend,
    BrokerIdPublishResult,
    CheckResult,
    Delivery,
    OutgoingMessage,
    PublishResult,
    QueueStats,
)
from queues.dead_letters import DeadLetter, wanted_set
from queues.errors import BadMessage, BrokerUnavailable, LeaseLost, QueueError, QueueMissing
from queues.models import DatabaseMessage, MessageState, Queue
from queues.notify import listen

CLAIMABLE = (MessageState.READY, MessageState.IN_FLIGHT)


@dataclass(frozen=True)
class DatabaseHandle:
    row_id: int
    lease_token: uuid.UUID


class DatabaseBackend(Backend):
    """Messages as rows in this deployment's database (PostgreSQL, or SQLite embedded)."""

    engine = "the database queue"
    #: 1 MiB of JSON per message: the same order as SQS and Kafka, and rows stay cheap to move.
    max_message_bytes = 1 * MIB
    #: How often ``fetch`` looks again while waiting (the relay's NOTIFY is the fast path).
    poll_interval = 0.2

    def __init__(self, queue: Queue, owner: str | None = None) -> None:
        super().__init__(queue)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        self._closed = threading.Event()
        self._listener: Any = None  # PostgreSQL: a psycopg connection LISTENing on channel

    @property
    def channel(self) -> str:
        """The NOTIFY channel of this queue (PostgreSQL)."""
        return f"quaymaster_queue_{self.queue.pk}"

    # -- producer side ------------------------------------------------------------------------

    def provision(self) -> None:
        """Nothing to create: rows live in the queues app's table (its migration made it)."""
        self._require_saved()

    def check(self) -> CheckResult:
        try:
            connection.ensure_connection()
        except DatabaseError as exc:
            raise BrokerUnavailable(f"The database is unreachable: {exc}") from exc
        return CheckResult(ok=True, detail="database reachable", provisioned=self._saved())

    def publish(self, messages: Sequence[OutgoingMessage]) -> list[PublishResult]:
        self.check_sizes(messages)
        self._require_saved()
        bodies = [self._json_body(m) for m in messages]
        ids = {uuid.UUID(m.message_id) for m in messages}
        now = timezone.now()
        with transaction.atomic():
            known: dict[uuid.UUID, int] = dict(
                DatabaseMessage.objects.filter(
                    queue_id=self.queue.pk, message_id__in=ids
                ).values_list("message_id", "id")
            )
            rows: list[DatabaseMessage] = []
            for message, body in zip(messages, bodies, strict=True):
                message_id = uuid.UUID(message.message_id)
                if message_id in known or any(r.message_id == message_id for r in rows):
                    continue
                rows.append(
                    DatabaseMessage(
                        queue_id=self.queue.pk,
                        message_id=message_id,
                        body=body,
                        headers=dict(message.headers),
                        ordering_key=message.ordering_key or "",
                        available_at=now,
                    )
                )
            for row in DatabaseMessage.objects.bulk_create(rows):
                known[row.message_id] = row.pk
            if rows and connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_notify(%s, '')", [self.channel])
        return [
            BrokerIdPublishResult(m.message_id, known[uuid.UUID(m.message_id)]) for m in messages
        ]

    def stats(self) -> QueueStats:
        self._require_saved()
        counts = dict.fromkeys(MessageState.values, 0)
        for row in self._rows().values("state").annotate(n=Count("id")).order_by():
            counts[row["state"]] = row["n"]
        return QueueStats(
            depth=counts[MessageState.READY],
            in_flight=counts[MessageState.IN_FLIGHT],
            dead_letters=counts[MessageState.DEAD],
        )

    # -- consumer side ------------------------------------------------------------------------

    def fetch(self, max_messages: int = 10, wait_seconds: float = 1.0) -> list[Delivery]:
        self._require_saved()
        deadline = time.monotonic() + max(0.0, wait_seconds)
        if wait_seconds > 0:
            self._listen()  # before the first claim: a NOTIFY after it is not missed
        while True:
            deliveries = self._claim(max(1, max_messages))
            remaining = deadline - time.monotonic()
            if deliveries or remaining <= 0 or self._closed.is_set():
                return deliveries
            self._wait(min(self.poll_interval, remaining))

    def ack(self, delivery: Delivery) -> None:
        handle = self._handle(delivery)
        deleted, _ = self._leased(handle).delete()
        if not deleted:
            self._lost(delivery)

    def ack_many(self, deliveries: Sequence[Delivery]) -> list[QueueError | None]:
        """Delete the rows still leased by these deliveries in one transaction: lock them,
        keep those whose lease token is still ours, delete those. A database error is raised
        (the worker treats it as a failure of all of them)."""
        results: list[QueueError | None] = [None] * len(deliveries)
        wanted: dict[int, tuple[int, uuid.UUID]] = {}
        for index, delivery in enumerate(deliveries):
            handle = self._handle(delivery)
            wanted[handle.row_id] = (index, handle.lease_token)
        with transaction.atomic():
            rows = self._rows().filter(pk__in=list(wanted), state=MessageState.IN_FLIGHT)
            if connection.features.has_select_for_update:
                rows = rows.select_for_update()
            held = [
                pk for pk, token in rows.values_list("pk", "lease_token") if wanted[pk][1] == token
            ]
            if held:
                self._rows().filter(pk__in=held).delete()
        for pk in set(wanted) - set(held):
            index = wanted[pk][0]
            results[index] = self._lease_lost(deliveries[index])
        return results

    def retry_later(self, delivery: Delivery, delay_seconds: float) -> None:
        handle = self._handle(delivery)
        updated = self._leased(handle).update(
            state=MessageState.READY,
            available_at=timezone.now() + timedelta(seconds=max(0.0, delay_seconds)),
            lease_token=None,
            lease_owner="",
        )
        if not updated:
            self._lost(delivery)

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        handle = self._handle(delivery)
        updated = self._leased(handle).update(
            state=MessageState.DEAD, last_error=reason, lease_token=None, lease_owner=""
        )
        if not updated:
            self._lost(delivery)

    def extend(self, delivery: Delivery, seconds: float) -> None:
        handle = self._handle(delivery)
        updated = self._leased(handle).update(
            available_at=timezone.now() + timedelta(seconds=max(0.0, seconds))
        )
        if not updated:
            self._lost(delivery)

    def close(self) -> None:
        self._closed.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(Exception):
                listener.close()

    def _listen(self) -> None:
        if self._listener is not None or connection.vendor != "postgresql":
            return
        import psycopg

        with contextlib.suppress(psycopg.Error):  # if not, polling still finds the messages
            self._listener = listen(self.channel)

    def _wait(self, seconds: float) -> None:
        """Until a NOTIFY for this queue (PostgreSQL) or ``seconds``, whichever comes first."""
        listener = self._listener
        if listener is None:
            self._closed.wait(seconds)
            return
        try:
            for _ in listener.notifies(timeout=seconds, stop_after=1):
                pass
        except Exception:  # the listener broke (or was closed): poll from now on
            self._listener = None
            with contextlib.suppress(Exception):
                listener.close()
            self._closed.wait(seconds)

    # -- administration -----------------------------------------------------------------------

    def dead_letters(self, limit: int = 50, keys: Iterable[str] | None = None) -> list[DeadLetter]:
        """The queue's ``dead`` rows, oldest first; reading them changes nothing."""
        self._require_saved()
        rows = self._dead(wanted_set(keys)).order_by("id")[: max(0, limit)]
        return [
            DeadLetter(
                key=str(row.message_id),
                message_id=str(row.message_id),
                body=json.dumps(row.body, separators=(",", ":"), ensure_ascii=False).encode(),
                reason=row.last_error or "(no reason recorded)",
                attempts=row.attempts,
                headers=dict(row.headers or {}),
                ordering_key=row.ordering_key or None,
                origin=f"queues_databasemessage row {row.pk}",
            )
            for row in rows
        ]

    def redrive(self, message_ids: Iterable[str] | None = None) -> int:
        """Dead rows become ready now with attempts 0: one UPDATE, so nothing is in between."""
        self._require_saved()
        return int(
            self._dead(wanted_set(message_ids)).update(
                state=MessageState.READY,
                attempts=0,
                available_at=timezone.now(),
                last_error="",
                lease_token=None,
                lease_owner="",
            )
        )

    def delete_dead_letter(self, message_id: str) -> bool:
        self._require_saved()
        deleted, _ = self._dead({message_id}).delete()
        return deleted > 0

    def purge(self) -> int:
        """Delete the ready rows (delayed retries included). In-flight rows stay: a handler is
        working on them and will settle them; dead rows stay for an admin."""
        self._require_saved()
        deleted, _ = self._rows().filter(state=MessageState.READY).delete()
        return int(deleted)

    def _dead(self, wanted: set[str] | None) -> Any:
        rows = self._rows().filter(state=MessageState.DEAD)
        if wanted is None:
            return rows
        ids = []
        for value in wanted:
            with contextlib.suppress(ValueError):
                ids.append(uuid.UUID(value))
        return rows.filter(message_id__in=ids)

    # -- the claim ----------------------------------------------------------------------------

    def _claim(self, limit: int) -> list[Delivery]:
        now = timezone.now()
        token = uuid.uuid4()
        max_attempts = self.queue.max_attempts
        claimable = self._rows().filter(state__in=CLAIMABLE, available_at__lte=now)
        with transaction.atomic():
            candidates = claimable.order_by("id")
            if connection.features.has_select_for_update_skip_locked:
                candidates = candidates.select_for_update(skip_locked=True)
            rows = list(candidates.values_list("id", "attempts")[:limit])
            exhausted = [row_id for row_id, attempts in rows if attempts >= max_attempts]
            wanted = [row_id for row_id, attempts in rows if attempts < max_attempts]
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
                lease_owner=self.owner,
                available_at=now + timedelta(seconds=self.queue.visibility_timeout),
                attempts=F("attempts") + 1,
            )
            claimed = list(
                self._rows()
                .filter(id__in=wanted, lease_token=token)
                .order_by("id")
                .values_list("id", "message_id", "body", "headers", "ordering_key", "attempts")
            )
        return [
            Delivery(
                message_id=str(message_id),
                body=json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(),
                attempt=attempts,
                headers=dict(headers or {}),
                handle=DatabaseHandle(row_id, token),
                ordering_key=ordering_key or None,
            )
            for row_id, message_id, body, headers, ordering_key, attempts in claimed
        ]

    # -- helpers ------------------------------------------------------------------------------

    def _rows(self) -> Any:
        return DatabaseMessage.objects.filter(queue_id=self.queue.pk)

    def _leased(self, handle: DatabaseHandle) -> Any:
        return self._rows().filter(
            pk=handle.row_id, lease_token=handle.lease_token, state=MessageState.IN_FLIGHT
        )

    def _handle(self, delivery: Delivery) -> DatabaseHandle:
        if not isinstance(delivery.handle, DatabaseHandle):
            raise TypeError("This delivery was not fetched by a database backend.")
        return delivery.handle

    def _lost(self, delivery: Delivery) -> None:
        raise self._lease_lost(delivery)

    @staticmethod
    def _lease_lost(delivery: Delivery) -> LeaseLost:
        return LeaseLost(
            f"Message {delivery.message_id} is no longer leased by this consumer (its visibility "
            "timeout expired and it was claimed again, or it was already settled)."
        )

    def _saved(self) -> bool:
        return self.queue.pk is not None

    def _require_saved(self) -> None:
        if not self._saved():
            raise QueueMissing(f"Queue {self.queue.name!r} is not saved: database queues are rows.")

    @staticmethod
    def _json_body(message: OutgoingMessage) -> Any:
        if not isinstance(message.body, bytes):
            return message.body
        try:
            return json.loads(message.body)
        except ValueError as exc:
            raise BadMessage(
                f"Message {message.message_id}: database queues store JSON bodies."
            ) from exc
