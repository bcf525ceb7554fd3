"""A run's results, split into successes and failures, each beside its parameters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework.exceptions import ValidationError

from jobs.models import JobInstance, JobRun
from jobs.states import InstanceState

DEFAULT_LIMIT = 100
MAX_LIMIT = 1_000


def page_bounds(query: Mapping[str, Any]) -> tuple[int, int]:
    """``offset`` and ``limit`` from a query string, checked (limit ≤ 1,000)."""
    bounds = {}
    for key, default, ceiling in (("offset", 0, None), ("limit", DEFAULT_LIMIT, MAX_LIMIT)):
        raw = query.get(key)
        try:
            value = default if raw in (None, "") else int(raw)
        except (TypeError, ValueError):
            raise ValidationError({key: ["A whole number."]}) from None
        if value < 0 or (ceiling is not None and not 1 <= value <= ceiling):
            raise ValidationError({key: [f"Out of range (limit is 1 to {MAX_LIMIT})."]})
        bounds[key] = value
    return bounds["offset"], bounds["limit"]


def instance_row(instance: JobInstance) -> dict[str, Any]:
    return {
        "instance-id": str(instance.pk),
        "index": instance.index,
        "state": instance.state,
        "params": instance.params,
        "attempts": instance.attempts,
        "progress": instance.progress,
        "result": instance.result,
        "error": instance.error,
        "reason": instance.reason,
        "started_at": instance.started_at.isoformat() if instance.started_at else None,
        "finished_at": instance.finished_at.isoformat() if instance.finished_at else None,
    }


def results(run: JobRun, offset: int = 0, limit: int = DEFAULT_LIMIT) -> dict[str, Any]:
    """``{"state", "succeeded": [...], "failed": [...]}``; each list paged by offset/limit,
    with its total under ``succeeded-count``/``failed-count``."""
    ok = run.instances.filter(state=InstanceState.COMPLETED).order_by("index")
    bad = run.instances.filter(state=InstanceState.ERRORED).order_by("index")
    return {
        "run-id": str(run.pk),
        "state": run.state,
        "succeeded-count": ok.count(),
        "failed-count": bad.count(),
        "succeeded": [
            {"instance-id": str(i.pk), "index": i.index, "params": i.params, "result": i.result}
            for i in ok[offset : offset + limit]
        ],
        "failed": [
            {"instance-id": str(i.pk), "index": i.index, "params": i.params, "error": i.error}
            for i in bad[offset : offset + limit]
        ],
    }
