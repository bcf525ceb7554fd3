"""The audit app's housekeeping as a Celery task (beat sends it, see settings)."""

from __future__ import annotations

from celery import shared_task

from audit import housekeeping


@shared_task(name="audit.prune", ignore_result=True)
def prune() -> int:
    return housekeeping.prune()
