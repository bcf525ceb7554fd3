"""The jobs app's handlers, found by the workers' handler discovery.

- ``jobs.instance`` runs one instance of a run (see ``jobs.execution``).
- ``start_job`` starts a run from a message, so chains need no code: point a run's
  ``on_complete`` at a queue and link its ``job.completed`` event to a ``start_job`` message —
  ``{"handler": "start_job", "job": "report", "params": [{…}], "parallelism": 5,
  "priority": 9, "queue": "jobs", "on_complete": "events"}``. A message delivered twice
  starts one run.
"""

from __future__ import annotations

from typing import Any

from jobs.dispatch import INSTANCE_HANDLER
from jobs.errors import JobError
from jobs.execution import run_instance
from jobs.models import Trigger
from jobs.runs import start
from workers.context import Context
from workers.registry import handler

handler(INSTANCE_HANDLER)(run_instance)


@handler("start_job")
def start_job(message: dict[str, Any], ctx: Context) -> None:
    """Start the job ``message["job"]`` over ``message["params"]``."""
    options: dict[str, Any] = {}
    for key in ("parallelism", "priority", "queue", "on_complete", "on_complete_handler"):
        if key in message:
            options[key] = message[key]
    try:
        run = start(
            message.get("job", ""),
            message.get("params"),
            trigger=Trigger.MESSAGE,
            source=f"message:{ctx.message_id}",
            **options,
        )
    except (JobError, TypeError) as exc:
        # Bad input stays bad: nothing a retry could change.
        ctx.dead_letter(f"start_job: {getattr(exc, 'message', exc)}")
        return
    count = f"{run.total} instance" + ("" if run.total == 1 else "s")
    ctx.log.info("started job %s: run %s with %s", run.job, run.pk, count)
    ctx.ack()
