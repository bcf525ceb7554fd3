"""The jobs app's Celery tasks, run by the platform's Celery worker (``platform/Procfile``).

``jobs.tick`` is the housekeeping tick of time windows (see ``jobs.windows``): Celery beat
sends it every ``QUAYMASTER_JOB_TICK_SECONDS``. Running it twice at once is harmless: each
run is changed under its row lock, and a run already started or expired is left alone.
"""

from __future__ import annotations

from celery import shared_task

from jobs import windows


@shared_task(name="jobs.tick", ignore_result=True)
def tick() -> dict[str, int]:
    done = windows.tick()
    return {"activated": done.activated, "expired_instances": done.expired_instances}
