"""What a job function gets besides its parameters: ``ctx``, the handler context of the
instance's message plus the instance's own view (``run_id``, ``instance_id``, ``params``,
``progress``)."""

from __future__ import annotations

import time
from typing import Any

from jobs.models import JobInstance
from workers.context import Context

#: Seconds between two progress writes of one instance (the last one is always written).
PROGRESS_INTERVAL = 0.25


class JobContext:
    """The handler context of the instance's message, plus the instance's own view."""

    def __init__(self, ctx: Context, instance: JobInstance) -> None:
        self._ctx = ctx
        self.run_id = str(instance.run_id)
        self.instance_id = str(instance.pk)
        self.index = instance.index
        self.params: dict[str, Any] = instance.params
        self._last_progress = 0.0

    def __getattr__(self, name: str) -> Any:
        # ctx.log, ctx.records, ctx.files, ctx.lock, ctx.publish, ctx.circuit, ctx.attempt…
        return getattr(self._ctx, name)

    def progress(self, done: int, total: int, message: str = "") -> None:
        """Report how far this instance is; shown on the run's page and in the API."""
        now = time.monotonic()
        if done < total and now - self._last_progress < PROGRESS_INTERVAL:
            return
        self._last_progress = now
        JobInstance.objects.filter(pk=self.instance_id).update(
            progress={"done": done, "total": total, "message": str(message)[:500]}
        )
