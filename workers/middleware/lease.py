"""Lease extension: on engines with a visibility timeout (database, SQS) a message whose
handler runs longer than the timeout would be delivered to another consumer. The consumer
thread extends each in-flight delivery by the queue's visibility timeout when half of it is
left, for as long as the handler runs (and while its result waits to be settled)."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from queues.errors import LeaseLost, QueueError
from workers.middleware.base import Middleware, WorkerView

if TYPE_CHECKING:
    from queues.backends.base import Backend
    from workers.job import Job

logger = logging.getLogger("workers.lease")

#: After a failed extension (broker unreachable), try again this much later.
RETRY_SECONDS = 0.5


class LeaseExtension(Middleware):
    def __init__(self, remaining_ratio: float = 0.5) -> None:
        self.remaining_ratio = remaining_ratio
        self._retry_at: dict[int, float] = {}

    def after_fetch(self, worker: WorkerView, job: Job) -> None:
        if worker.leases:
            job.lease_until = job.fetched_at + worker.queue.visibility_timeout

    def on_consumer_tick(self, worker: WorkerView, backend: Backend) -> float | None:
        if not worker.leases:
            return None
        timeout = float(worker.queue.visibility_timeout)
        if timeout <= 0:  # SQS allows 0: nothing is hidden, so nothing to keep
            return None
        margin = timeout * self.remaining_ratio
        now = time.monotonic()
        soonest: float | None = None
        for job in list(worker.in_flight.values()):
            if job.lease_until is None or job.lease_lost:
                continue
            due: float | None = max(job.lease_until - margin, self._retry_at.get(job.seq, 0.0))
            if due is not None and now >= due:
                due = self._extend(worker, backend, job, timeout, margin, now)
            if due is not None:
                soonest = due - now if soonest is None else min(soonest, due - now)
        return None if soonest is None else max(0.0, soonest)

    def after_settle(self, worker: WorkerView, job: Job, error: Exception | None) -> None:
        self._retry_at.pop(job.seq, None)

    def _extend(
        self,
        worker: WorkerView,
        backend: Backend,
        job: Job,
        timeout: float,
        margin: float,
        now: float,
    ) -> float | None:
        try:
            backend.extend(job.delivery, timeout)
        except LeaseLost as exc:
            job.lease_lost = True
            worker.warn(job, f"The lease was lost while the handler ran: {exc}")
            return None
        except QueueError as exc:
            logger.warning("Could not extend the lease of %s: %s", job.message_id, exc)
            self._retry_at[job.seq] = now + RETRY_SECONDS
            return now + RETRY_SECONDS
        self._retry_at.pop(job.seq, None)
        job.lease_until = now + timeout
        return job.lease_until - margin
