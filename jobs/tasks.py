"""The jobs app's Celery tasks, run by the platform's Celery worker (``platform/Procfile``).

``jobs.fire_schedule`` is what beat sends for a due schedule (see ``jobs.firing``: it acts
once per schedule and due time, however many times it is sent).

``jobs.tick`` is the housekeeping tick of time windows (see ``jobs.windows``): Celery beat
sends it every ``QUAYMASTER_JOB_TICK_SECONDS``. Running it twice at once is harmless: each
run is changed under its row lock, and a run already started or expired is left alone.
"""

from __future__ import annotations

from celery import shared_task

from jobs import firing, housekeeping, windows


@shared_task(name="jobs.tick", ignore_result=True)
def tick() -> dict[str, int]:
    done = windows.tick()
    return {"activated": done.activated, "expired_instances": done.expired_instances}


@shared_task(name="jobs.fire_schedule", ignore_result=True)
def fire_schedule(schedule_id: int) -> str:
    fired = firing.fire(int(schedule_id))
    if fired.fire is None:
        return "nothing to do (already fired, disabled or not due)"
    return f"{fired.fire.outcome} for {fired.fire.due_at.isoformat()}"


@shared_task(name="jobs.prune", ignore_result=True)
def prune() -> dict[str, int]:
    done = housekeeping.prune()
    return {"runs": done.runs, "fires": done.fires}
