"""The message's ids on the process log (``quaymaster.logs``): while a handler runs, every line
its thread logs — the handler's own ``logging`` calls, ``ctx.log``, a job's lines, the
platform's — carries ``queue``, ``message_id``, ``handler`` and ``attempt``; once the handler
is done, one ``workers.messages`` line per message says what it decided (``outcome``: ack,
retry, dead_letter, not_acked) and how long it ran, with what the handler bound too (a job's
``run_id``). The ids are cleared after each message.

A batch handler runs once for many messages: its lines carry the queue and handler only, and
each message of the batch still gets its own line afterwards.

Listed after ``Retries`` (``workers.runtime.default_middleware``), so the line tells the
decision: a handler that raised is logged as the retry or dead letter it became.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from quaymaster import logs
from workers.middleware.base import Middleware, WorkerView

if TYPE_CHECKING:
    from workers.job import Job

logger = logging.getLogger("workers.messages")


class LogContext(Middleware):
    def before_process_message(self, worker: WorkerView, job: Job) -> None:
        logs.clear()
        if getattr(job.handler, "batch", None) is not None:
            logs.bind(queue=worker.queue.name, handler=job.handler_name)
        else:
            logs.bind(
                queue=worker.queue.name,
                message_id=job.message_id,
                handler=job.handler_name,
                attempt=job.attempt,
            )

    def after_process_message(self, worker: WorkerView, job: Job) -> None:
        outcome = str(job.outcome.settlement) if job.outcome is not None else "not_acked"
        duration = job.duration_ms
        logger.info(
            "message %s%s",
            outcome,
            "" if duration is None else f" in {duration} ms",
            extra={
                "queue": worker.queue.name,
                "message_id": job.message_id,
                "handler": job.handler_name,
                "attempt": job.attempt,
                "outcome": outcome,
                "duration_ms": duration,
            },
        )
        logs.clear()
