"""The workers app's housekeeping as a Celery task (beat sends it, see settings)."""

from __future__ import annotations

from celery import shared_task

from workers.events import prune_events


@shared_task(name="workers.prune_lifecycle", ignore_result=True)
def prune_lifecycle() -> int:
    return prune_events()
