"""The lifecycle log: started, failed, complete, retried, dead-lettered, and the worker's own
started/draining/stopped lines, emitted into the worker's event sink (``WorkerView.events``: the
worker's ``EventWriter``, which stores them as ``LifecycleEvent`` rows in batches, beside the
handlers' ``ctx.log`` lines)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from workers.events import Event
from workers.job import Settlement
from workers.middleware.base import Middleware, WorkerView
from workers.models import EventKind, Level

if TYPE_CHECKING:
    from workers.job import Job

logger = logging.getLogger("workers.lifecycle")


class LifecycleLog(Middleware):
    def after_worker_boot(self, worker: WorkerView) -> None:
        self._worker_line(worker, f"Worker started (concurrency {worker.options.concurrency}).")

    def before_worker_shutdown(self, worker: WorkerView) -> None:
        self._worker_line(worker, f"Draining {len(worker.in_flight)} message(s).")

    def after_worker_shutdown(self, worker: WorkerView) -> None:
        self._worker_line(worker, "Worker stopped.")

    def before_process_message(self, worker: WorkerView, job: Job) -> None:
        self._emit(worker, job, EventKind.STARTED, Level.INFO, "")

    def after_process_message(self, worker: WorkerView, job: Job) -> None:
        if job.exception is None:
            return
        settled_first = job.outcome is not None and job.outcome.settlement == Settlement.ACK
        detail = job.traceback or f"{type(job.exception).__name__}: {job.exception}"
        if settled_first:
            detail = f"Raised after ctx.ack(); the acknowledgement stands.\n{detail}"
        logger.warning("%s %s failed: %s", job.handler_name or "?", job.message_id, job.exception)
        self._emit(worker, job, EventKind.FAILED, Level.ERROR, detail)

    def after_settle(self, worker: WorkerView, job: Job, error: Exception | None) -> None:
        if error is not None:
            self._emit(
                worker,
                job,
                EventKind.LOG,
                Level.ERROR,
                f"Could not {job.settlement} the message: {error}. The engine delivers it again.",
            )
            return
        outcome = job.outcome
        settlement = job.settlement
        if settlement == Settlement.ACK:
            self._emit(worker, job, EventKind.COMPLETE, Level.INFO, "")
        elif settlement == Settlement.RETRY and outcome is not None:
            self._emit(
                worker,
                job,
                EventKind.RETRIED,
                Level.WARNING,
                f"Retry in {outcome.delay or 0:.2f}s: {outcome.reason}",
            )
        elif settlement == Settlement.DEAD_LETTER and outcome is not None:
            self._emit(worker, job, EventKind.DEAD_LETTERED, Level.ERROR, outcome.reason)
        elif settlement == Settlement.NOT_ACKED:
            self._emit(
                worker,
                job,
                EventKind.LOG,
                Level.WARNING,
                f"The handler returned without acknowledging; {job.note}.",
            )
        elif settlement == Settlement.RELEASE:
            detail = f"Given back at shutdown; {job.note}."
            self._emit(worker, job, EventKind.LOG, Level.INFO, detail)

    def _emit(
        self, worker: WorkerView, job: Job, kind: EventKind, level: Level, detail: str
    ) -> None:
        worker.events.emit(
            Event(
                queue=worker.queue.name,
                kind=kind,
                message_id=job.message_id,
                handler=job.handler_name,
                level=level,
                detail=detail,
                attempt=job.attempt,
                duration_ms=job.duration_ms,
            )
        )

    def _worker_line(self, worker: WorkerView, text: str) -> None:
        worker.events.emit(Event(queue=worker.queue.name, kind=EventKind.LOG, detail=text))
