"""Time windows: a run scheduled for later (``not_before``) and a run's ``deadline``.

The jobs housekeeping tick (``tick``, run every few seconds by the Celery worker, see
``jobs.tasks``) activates scheduled runs whose time has come and cancels, in runs whose
deadline has passed, every instance that has not started, with that reason. A worker that
receives an instance after its run's deadline does the same at once, so the deadline holds
to the second for instances that reach a worker, and to the tick for those that do not.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.db.models import F
from django.utils import timezone

from jobs.dispatch import cancel_waiting, complete_if_done, locked_run, move, release, save_counters
from jobs.models import JobRun
from jobs.states import OPEN_RUN_STATES, RunState

DEADLINE_REASON = "not started by the run's deadline"


def activate(run_id: uuid.UUID | str, now: dt.datetime | None = None) -> bool:
    """Start a scheduled run whose ``not_before`` has come; False if it was not due."""
    now = now or timezone.now()
    with locked_run(run_id) as run:
        if run.state != RunState.SCHEDULED or (run.not_before and run.not_before > now):
            return False
        move(run, RunState.ACTIVE, "not_before reached")
        run.started_at = now
        release(run)
        save_counters(run)
    return True


def expire(run_id: uuid.UUID | str, now: dt.datetime | None = None) -> int:
    """Cancel the instances of a run past its deadline that have not started; how many."""
    now = now or timezone.now()
    with locked_run(run_id) as run:
        if run.state not in OPEN_RUN_STATES or run.deadline is None or run.deadline > now:
            return 0
        cancelled = cancel_waiting(run, DEADLINE_REASON)
        if not complete_if_done(run) and run.state != RunState.FINISHING:
            move(
                run,
                RunState.FINISHING,
                f"deadline passed: {cancelled} instance{'' if cancelled == 1 else 's'} cancelled",
            )
        save_counters(run)
    return cancelled


@dataclass(frozen=True)
class Tick:
    activated: int
    expired_instances: int


def tick(now: dt.datetime | None = None) -> Tick:
    """Activate due scheduled runs, then apply passed deadlines."""
    now = now or timezone.now()
    due = JobRun.objects.filter(state=RunState.SCHEDULED, not_before__lte=now)
    activated = sum(activate(pk, now) for pk in due.values_list("pk", flat=True))
    overdue = JobRun.objects.filter(
        state__in=[s.value for s in OPEN_RUN_STATES], deadline__lte=now, finished__lt=F("total")
    )
    expired = sum(expire(pk, now) for pk in overdue.values_list("pk", flat=True))
    return Tick(activated, expired)
