"""Clean-up of the jobs app, run as a Celery periodic task (``jobs.prune``): runs that ended
longer ago than ``QUAYMASTER_JOB_RETENTION_DAYS`` (with their instances and transitions), and
schedule fires as old. Runs still open are never deleted, however old."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from jobs.models import JobRun, ScheduleFire
from jobs.states import TERMINAL_RUN_STATES


def retention() -> dt.timedelta:
    return dt.timedelta(days=float(getattr(settings, "QUAYMASTER_JOB_RETENTION_DAYS", 30)))


@dataclass(frozen=True)
class Pruned:
    runs: int
    fires: int


def prune(now: dt.datetime | None = None) -> Pruned:
    before = (now or timezone.now()) - retention()
    old_runs = JobRun.objects.filter(
        state__in=[s.value for s in TERMINAL_RUN_STATES], finished_at__lt=before
    )
    runs = old_runs.count()
    old_runs.delete()
    fires, _ = ScheduleFire.objects.filter(fired_at__lt=before).delete()
    return Pruned(runs=runs, fires=fires)
