"""Jobs: a named function run over a list of parameter objects, one instance per object,
each instance a message executed by the platform's workers.

    from jobs import job, start

    @job("recompute_total")
    def recompute_total(params, ctx):
        ...
        return {"total": total}

    run = start("recompute_total", [{"order": 1}, {"order": 2}], parallelism=5)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobs.models import JobRun


def start(name: str, params: object, **options: Any) -> JobRun:
    """Start a run (see ``jobs.runs.start``)."""
    from jobs.runs import start as start_run

    return start_run(name, params, **options)


def job(name: str) -> Any:
    """Register a job function (see ``jobs.registry``)."""
    from jobs.registry import job as register

    return register(name)
