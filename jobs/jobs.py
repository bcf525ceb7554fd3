"""Built-in jobs."""

from __future__ import annotations

from typing import Any

from jobs.context import JobContext
from jobs.registry import job


@job("echo")
def echo(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Return the instance's parameters unchanged.

    For trying the API and for smoke tests: a run of ``echo`` over ``[{"n": 1}, {"n": 2}]``
    ends with two results equal to their parameters."""
    ctx.progress(1, 1)
    return params
