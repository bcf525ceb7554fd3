"""Clean-ups of the queues app, run as Celery periodic tasks (``queues/tasks.py``):

- outbox rows published longer ago than ``QUAYMASTER_OUTBOX_RETENTION_HOURS`` (pending and
  failed rows are never deleted here: they are still to be delivered, or wait for an admin);
- idempotency keys older than ``QUAYMASTER_IDEMPOTENCY_KEY_HOURS``: a repeat of the key after
  that publishes again (the publish API treats an expired key as unknown, even before it is
  deleted).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone

from queues.models import IdempotencyKey, OutboxMessage, OutboxState


def outbox_retention() -> dt.timedelta:
    return dt.timedelta(hours=float(getattr(settings, "QUAYMASTER_OUTBOX_RETENTION_HOURS", 24)))


def idempotency_ttl() -> dt.timedelta:
    return dt.timedelta(hours=float(getattr(settings, "QUAYMASTER_IDEMPOTENCY_KEY_HOURS", 24)))


def prune_outbox(now: dt.datetime | None = None) -> int:
    """Delete outbox rows published before the retention period; returns how many."""
    before = (now or timezone.now()) - outbox_retention()
    deleted, _ = OutboxMessage.objects.filter(
        state=OutboxState.PUBLISHED, published_at__lt=before
    ).delete()
    return deleted


def prune_idempotency_keys(now: dt.datetime | None = None) -> int:
    """Delete idempotency keys past their lifetime; returns how many."""
    before = (now or timezone.now()) - idempotency_ttl()
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=before).delete()
    return deleted
