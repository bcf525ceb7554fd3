"""The jobs app's exceptions. Each carries a stable ``code`` and an HTTP ``status``, which the
API's one exception handler turns into ``{"code", "detail"}`` (see ``quaymaster.exceptions``)."""

from __future__ import annotations


class JobError(Exception):
    code = "job_error"
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnknownJob(JobError):
    code = "unknown_job"


class InvalidParameters(JobError):
    """The parameters are not a list of JSON objects, or are too large."""

    code = "invalid_parameters"


class TooManyInstances(JobError):
    code = "too_many_instances"


class InvalidParallelism(JobError):
    code = "invalid_parallelism"


class InvalidRunOptions(JobError):
    """A queue that does not exist or is disabled, a deadline before ``not_before``…"""

    code = "invalid_run_options"


class RunNotFound(JobError):
    code = "run_not_found"
    status = 404


class IllegalTransition(JobError):
    """The run or instance is not in a state that allows the change (pause a finished run)."""

    code = "illegal_transition"
    status = 409


class JobAlreadyRegistered(JobError):
    code = "job_already_registered"


class InvalidSchedule(JobError):
    """A schedule that cannot be saved: ``errors`` says which field, and why."""

    code = "invalid_schedule"

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or {}


class InvalidCron(InvalidSchedule):
    code = "invalid_cron"


class MissingHandler(InvalidSchedule):
    code = "missing_handler"


class ScheduleNotFound(JobError):
    code = "schedule_not_found"
    status = 404
