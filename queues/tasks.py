"""The queues app's housekeeping as Celery tasks (beat sends them, see settings)."""

from __future__ import annotations

from celery import shared_task

from queues import housekeeping


@shared_task(name="queues.prune_outbox", ignore_result=True)
def prune_outbox() -> int:
    return housekeeping.prune_outbox()


@shared_task(name="queues.prune_idempotency_keys", ignore_result=True)
def prune_idempotency_keys() -> int:
    return housekeeping.prune_idempotency_keys()
