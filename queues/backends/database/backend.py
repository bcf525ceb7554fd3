"""``DatabaseBackend``: the database queue behind the backend interface (the package's
docstring states the semantics; the claim is in ``claim.py``, the wake-up in ``wakeup.py``)."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.db.models import Count
from django.utils import timezone

from queues.backends.base import MIB, AddError, Backend, PrioritySupport, QueueConfig
from queues.backends.database.claim import (
    DatabaseHandle,
    claim,
    delete_leased,
    leased,
    rows,
)
from queues.backends.database.dead_letters import DatabaseDeadLetters
from queues.backends.database.errors import database_errors
from queues.backends.database.prefetch import Prefetch
from queues.backends.database.wakeup import Wakeup, notify
from queues.errors import BadMessage, BrokerUnavailable, LeaseLost, QueueError, QueueMissing
from queues.messages import (
    BrokerIdPublishResult,
    CheckResult,
    Delivery,
    OutgoingMessage,
    PublishResult,
    QueueStats,
)
from queues.models import DatabaseMessage, MessageState


class DatabaseBackend(Backend):
    """Messages as rows in this deployment's database (PostgreSQL, or SQLite embedded)."""

    engine = "the database queue"
    leases = True
    thread_bound = True
    in_database = True
    handle_type = DatabaseHandle
    #: 1 MiB of JSON per message: the same order as SQS and Kafka, and rows stay cheap to move.
    max_message_bytes = 1 * MIB
    #: How often ``fetch`` looks again while waiting (the relay's NOTIFY is the fast path).
    poll_interval = 0.2

    def __init__(self, queue: QueueConfig, owner: str | None = None) -> None:
        super().__init__(queue)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        self.wakeup = Wakeup(queue.pk)
        #: Claimed, not yet handed out (a worker's backend only, see ``prepare``).
        self.prefetch = Prefetch(queue.pk, queue.visibility_timeout)

    @classmethod
    def priority_support(cls, queue: QueueConfig) -> PrioritySupport:
        return PrioritySupport(True, "The database queue claims the highest priority first.")

    @classmethod
    def clean_queue(cls, queue: QueueConfig, add: AddError) -> None:
        if queue.url:
            add("url", "Database queues live in this deployment's database: leave url blank.")
        if queue.username or queue.has_secret:
            add("username", "Database queues take no credentials.")
        if queue.visibility_timeout < 1:
            add("visibility_timeout", "The visibility timeout must be at least 1 second.")

    def prepare(self, concurrency: int) -> None:
        """A worker's backend claims a batch at once and hands it out as asked (``prefetch.py``
        says why, and how the guarantees hold)."""
        self.prefetch.prepare(concurrency)

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
        with database_errors("publishing"), transaction.atomic():
            known: dict[uuid.UUID, int] = dict(
                self._rows().filter(message_id__in=ids).values_list("message_id", "id")
            )
            new: list[DatabaseMessage] = []
            for message, body in zip(messages, bodies, strict=True):
                message_id = uuid.UUID(message.message_id)
                if message_id in known or any(r.message_id == message_id for r in new):
                    continue
                new.append(
                    DatabaseMessage(
                        queue_id=self.queue.pk,
                        message_id=message_id,
                        body=body,
                        headers=dict(message.headers),
                        ordering_key=message.ordering_key or "",
                        priority=message.priority or 0,
                        available_at=now,
                    )
                )
            for row in DatabaseMessage.objects.bulk_create(new):
                known[row.message_id] = row.pk
            if new:
                notify(self.queue.pk)
        return [
            BrokerIdPublishResult(m.message_id, known[uuid.UUID(m.message_id)]) for m in messages
        ]

    def stats(self) -> QueueStats:
        self._require_saved()
        counts = dict.fromkeys(MessageState.values, 0)
        with database_errors("counting messages"):
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
        wanted = max(1, max_messages)
        if self.prefetch:
            with database_errors("renewing prefetched leases"):
                return self.prefetch.take(wanted)
        deadline = time.monotonic() + max(0.0, wait_seconds)
        if wait_seconds > 0:
            self.wakeup.listen()  # before the first claim: a wake-up after it is not missed
        while True:
            with database_errors("claiming messages"):
                deliveries = claim(
                    self.queue.pk,
                    self.owner,
                    self.prefetch.claim_size(wanted),
                    self.queue.max_attempts,
                    self.queue.visibility_timeout,
                )
            deliveries = self.prefetch.hand_out(deliveries, wanted)
            remaining = deadline - time.monotonic()
            if deliveries or remaining <= 0 or self.wakeup.closed.is_set():
                return deliveries
            self.wakeup.wait(min(self.poll_interval, remaining))

    def ack(self, delivery: Delivery) -> None:
        with database_errors("acknowledging"):
            deleted, _ = self._leased(delivery).delete()
        if not deleted:
            self._lost(delivery)

    def ack_many(self, deliveries: Sequence[Delivery]) -> list[QueueError | None]:
        """Delete the rows still leased by these deliveries in one statement (those whose
        lease token is still ours). A database error is every delivery's error (nothing was
        deleted)."""
        results: list[QueueError | None] = [None] * len(deliveries)
        index: dict[int, int] = {}
        tokens: dict[int, uuid.UUID] = {}
        for i, delivery in enumerate(deliveries):
            handle = self._handle(delivery)
            index[handle.row_id] = i
            tokens[handle.row_id] = handle.lease_token
        try:
            with database_errors("acknowledging"):
                held = delete_leased(self.queue.pk, tokens)
        except BrokerUnavailable as exc:
            return [exc] * len(deliveries)
        for pk in set(tokens) - held:
            results[index[pk]] = self._lease_lost(deliveries[index[pk]])
        return results

    def retry_later(self, delivery: Delivery, delay_seconds: float) -> None:
        self._update_leased(
            delivery,
            "retrying",
            state=MessageState.READY,
            available_at=timezone.now() + timedelta(seconds=max(0.0, delay_seconds)),
            lease_token=None,
            lease_owner="",
        )

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        self._update_leased(
            delivery,
            "dead-lettering",
            state=MessageState.DEAD,
            last_error=reason,
            lease_token=None,
            lease_owner="",
        )

    def extend(self, delivery: Delivery, seconds: float) -> None:
        self._update_leased(
            delivery,
            "extending a lease",
            available_at=timezone.now() + timedelta(seconds=max(0.0, seconds)),
        )

    def _update_leased(self, delivery: Delivery, doing: str, **values: Any) -> None:
        with database_errors(doing):
            updated = self._leased(delivery).update(**values)
        if not updated:
            self._lost(delivery)

    def close(self) -> None:
        self.wakeup.close()
        self.prefetch.release()

    # -- administration (dead_letters.py) ----------------------------------------------------

    def dead_letter_store(self) -> DatabaseDeadLetters:
        self._require_saved()
        return DatabaseDeadLetters(self.queue.pk)

    def purge(self) -> int:
        """Delete the ready rows (delayed retries included). In-flight rows stay: a handler is
        working on them and will settle them; dead rows stay for an admin."""
        return self.dead_letter_store().purge()

    # -- helpers ------------------------------------------------------------------------------

    def _rows(self) -> Any:
        return rows(self.queue.pk)

    def _leased(self, delivery: Delivery) -> Any:
        return leased(self.queue.pk, self._handle(delivery))

    def _handle(self, delivery: Delivery) -> DatabaseHandle:
        handle: DatabaseHandle = self.handle(delivery)
        return handle

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
        body = message.body
        if isinstance(body, bytes):
            try:
                body = json.loads(body)
            except ValueError as exc:
                raise BadMessage(
                    f"Message {message.message_id}: database queues store JSON bodies."
                ) from exc
        if _holds_nul(body):
            # PostgreSQL's jsonb cannot store it; refused on SQLite too, the same queue type.
            raise BadMessage(
                f"Message {message.message_id}: database queues cannot store the NUL character."
            )
        return body


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_holds_nul(v) for v in value)
    return False
