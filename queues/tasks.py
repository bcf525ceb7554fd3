"""The queues app's housekeeping and the replays' tick as Celery tasks (beat sends them, see
settings)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from queues import housekeeping
from queues.replay import driver


@shared_task(name="queues.prune_outbox", ignore_result=True)
def prune_outbox() -> int:
    return housekeeping.prune_outbox()


@shared_task(name="queues.prune_idempotency_keys", ignore_result=True)
def prune_idempotency_keys() -> int:
    return housekeeping.prune_idempotency_keys()


@shared_task(name="queues.replays", ignore_result=True)
def replays() -> int:
    """Run the replays nobody holds for one slice (``queues.replay.driver.run_due``)."""
    return driver.run_due(settings.QUAYMASTER_REPLAY_SLICE_SECONDS)
