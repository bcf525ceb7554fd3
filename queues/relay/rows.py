"""The relay's outbox rows: which queues have work, a queue's head, and a batch's outcome.

A queue's rows are always read from its head (the oldest pending rows in id order), never
"after the last one sent": a transaction that took a lower id but committed late is then
published before any later write of the same record (which waited for that record's row
lock, so committed after it). A row is pending until marked published with its broker
reference (and its ``MessageTrace``, in the same statement unless
``QUAYMASTER_TRACE_MESSAGES`` is off); a row that can never be published is parked as failed
for an admin.

On PostgreSQL the marks are the relay's floor: changing ``state`` (indexed) is never a HOT
update, so each mark writes a new row version into every index of the table — about 10 ms
per 500 rows on the bench machine, against 3 ms to read them and 3 ms to delete them. A
per-queue watermark or delete-on-publish would lift that floor; both change what the outbox
keeps of a published row.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from queues.dialects import Renewal, dialect
from queues.errors import MessageTooLarge, QueueError
from queues.messages import PublishResult
from queues.models import OutboxMessage, OutboxState, Queue
from queues.tracing import tracing

log = logging.getLogger("queues.relay")


@dataclass(slots=True)
class PendingRow:
    """What the relay needs of a pending outbox row."""

    pk: int
    message_id: str
    ordering_key: str
    body: dict[str, Any] | str  # str: the JSON text as stored (see ``Dialect.outbox_head``)
    attempts: int
    due: bool
    priority: int | None = None


class OutboxRows:
    """Outbox rows as the relay reads and settles them, ``batch_size`` at a time."""

    def __init__(self, batch_size: int = 500) -> None:
        self.batch_size = batch_size

    def queues_due(self) -> list[Queue]:
        """Enabled queues whose oldest pending row is due, in one query: per queue, the head
        comes from the pending index (``queue, id``), whatever the size of the backlog."""
        head = OutboxMessage.objects.filter(
            queue_id=OuterRef("pk"), state=OutboxState.PENDING
        ).order_by("id")
        return list(
            Queue.objects.filter(enabled=True)
            .annotate(head_at=Subquery(head.values("available_at")[:1]))
            .filter(head_at__lte=timezone.now())
            .order_by("pk")
        )

    def pending(self, queue_id: int, skip: set[int] | None = None) -> list[PendingRow]:
        """The queue's oldest pending rows but those in ``skip`` (a batch in flight)."""
        found = dialect().outbox_head(queue_id, timezone.now(), self.batch_size, skip or set())
        return [PendingRow(*values) for values in found]

    def mark_published(
        self, done: list[tuple[PendingRow, PublishResult]], renewal: Renewal | None = None
    ) -> bool:
        """Mark rows published with their broker references, applying the lease ``renewal``
        on the way; False when that lease is no longer ours."""
        marks = [(row.pk, result.broker_reference(), result.broker_key) for row, result in done]
        kept = dialect().mark_published(marks, timezone.now(), renewal, traced=tracing())
        if done and log.isEnabledFor(logging.INFO):
            # The ids the web process logged at publish and the workers log per message.
            log.info(
                "relay: published %d message(s)",
                len(done),
                extra={"message_ids": [row.message_id for row, _ in done]},
            )
        return kept

    def park(self, error: MessageTooLarge) -> None:
        """The row can never be published: failed, for an admin to see and retry."""
        OutboxMessage.objects.filter(message_id=error.message_id).update(
            state=OutboxState.FAILED, last_error=error.message
        )

    def postpone(
        self, rows: list[PendingRow], error: QueueError, attempts: int, delay: float
    ) -> None:
        """Keep the rows pending with ``attempts`` counted, due again in ``delay`` seconds."""
        OutboxMessage.objects.filter(pk__in=[r.pk for r in rows]).update(
            attempts=attempts,
            last_error=f"{error.code}: {error.message}"[:2000],
            available_at=timezone.now() + dt.timedelta(seconds=delay),
        )
