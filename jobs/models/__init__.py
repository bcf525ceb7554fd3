"""The jobs app's models: runs and their instances (``runs``), schedules and their fires
(``schedules``)."""

from jobs.models.runs import JobInstance, JobRun, RunTransition, Trigger
from jobs.models.schedules import (
    CatchUp,
    FireOutcome,
    Schedule,
    ScheduleAction,
    ScheduleFire,
    ScheduleKind,
)

__all__ = [
    "CatchUp",
    "FireOutcome",
    "JobInstance",
    "JobRun",
    "RunTransition",
    "Schedule",
    "ScheduleAction",
    "ScheduleFire",
    "ScheduleKind",
    "Trigger",
]
