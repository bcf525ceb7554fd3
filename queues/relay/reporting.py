"""What the relay tells people: published per second, failed batches and the backlog, in its
log, and the outbox figures the back-office and monitoring show."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Min
from django.utils import timezone

from queues.models import OutboxMessage, OutboxState

log = logging.getLogger("queues.relay")


@dataclass
class RelayCounters:
    published: int = 0
    failures: int = 0
    started: float = field(default_factory=time.monotonic)


def report(counters: RelayCounters, now: float | None = None) -> None:
    """Log published per second and failures from ``counters`` start to ``now`` (monotonic
    seconds), with the backlog."""
    elapsed = max((time.monotonic() if now is None else now) - counters.started, 1e-9)
    stats = outbox_stats()
    log.info(
        "relay: published %d (%.1f/s), %d failed batches; backlog %s, oldest %.1fs",
        counters.published,
        counters.published / elapsed,
        counters.failures,
        stats["pending"],
        stats["oldest_pending_seconds"] or 0.0,
    )


def outbox_stats() -> dict[str, Any]:
    """Backlog and oldest pending age, for the back-office and monitoring."""
    pending = OutboxMessage.objects.filter(state=OutboxState.PENDING)
    oldest = pending.aggregate(oldest=Min("created_at"))["oldest"]
    return {
        "pending": pending.count(),
        "failed": OutboxMessage.objects.filter(state=OutboxState.FAILED).count(),
        "oldest_pending_seconds": (timezone.now() - oldest).total_seconds() if oldest else None,
    }
