"""Job runs: the latest run of a job ended failed."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from alerts.conditions.base import Breach, Condition, Param, Reading, Scope, register
from jobs.models import JobRun
from jobs.registry import registry
from jobs.states import RunState

if TYPE_CHECKING:
    from alerts.models import AlertRule

#: Run states that end a run.
ENDED = [
    RunState.COMPLETED,
    RunState.COMPLETED_WITH_ERRORS,
    RunState.CANCELLED,
    RunState.FAILED,
]


@register
class JobFailed(Condition):
    key = "job_failed"
    order = 60
    label = "A job run failed"
    description = (
        "The latest run of a job that ended in the last H hours ended failed (no instance "
        "completed). Resolves when a later run of the job ends otherwise."
    )
    params = (Param("hours", "Runs ended in the last (hours)", 24, minimum=1, maximum=8760),)
    scope = Scope.JOB

    def available(self) -> bool:
        return bool(registry.all()) or JobRun.objects.exists()

    def describe(self, rule: AlertRule) -> str:
        return f"A run failed {self.where(rule)} (last {self.param(rule, 'hours'):g} h)"

    def observe(self, rule: AlertRule, now: datetime) -> Reading:
        since = now - timedelta(hours=self.param(rule, "hours"))
        ended = JobRun.objects.filter(state__in=ENDED, finished_at__gte=since)
        if rule.job:
            ended = ended.filter(job=rule.job)
        latest: dict[str, JobRun] = {}
        failures: dict[str, int] = {}
        for run in ended.order_by("-finished_at").only("id", "job", "state", "finished_at"):
            if run.job not in latest:
                latest[run.job] = run
            if run.state == RunState.FAILED:
                failures[run.job] = failures.get(run.job, 0) + 1
        reading = Reading()
        for job, run in sorted(latest.items()):
            if run.state != RunState.FAILED:
                continue
            count = failures[job]
            reading.breaches.append(
                Breach(
                    f"job:{job}",
                    f"job {job}",
                    count,
                    f"The latest run of job {job} ({run.id}) failed; {count} failed run"
                    f"{'' if count == 1 else 's'} in the last {self.param(rule, 'hours'):g} h.",
                )
            )
        return reading
