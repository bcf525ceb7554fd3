"""Settlement: carrying out, with the engine, what each handler decided.

The consumer thread owns the backend, so it alone settles: the acknowledgements ready at
once go in one ``Backend.ack_many`` (one round trip on each engine); a retry, a dead letter,
a delivery the handler left unsettled or one given back at shutdown goes one by one. A job
no longer in flight (given back at shutdown already) is void when its late result arrives.
Every settlement, failed or not, reaches the middleware's ``after_settle``.
"""

from __future__ import annotations

import logging
import queue as queue_module
from collections.abc import Callable

from queues.backends.base import Backend
from queues.errors import QueueError
from queues.models import Queue
from workers.job import Job, Outcome, Settlement
from workers.middleware import Hooks, WorkerView

logger = logging.getLogger("workers.runtime")


class Settler:
    """Settles the jobs of one worker; ``in_flight`` is the worker's own map of fetched,
    unsettled jobs (by sequence number), which settling empties."""

    def __init__(
        self,
        queue: Queue,
        in_flight: dict[int, Job],
        hooks: Hooks,
        view: WorkerView,
        settled: Callable[[Job], None] | None = None,
    ) -> None:
        self.queue = queue
        self.in_flight = in_flight
        #: Told of each job leaving ``in_flight`` (the batcher keeps its counts by it).
        self.settled = settled
        self.hooks = hooks
        #: What middleware sees (the worker replaces it once its process row exists).
        self.view = view

    def settle_ready(
        self,
        backend: Backend,
        results: queue_module.SimpleQueue[Job | None],
        timeout: float | None,
    ) -> None:
        """Settle finished jobs: wait up to ``timeout`` for the first (None: forever), then take
        every other one that is ready; their acknowledgements go in one ``ack_many``."""
        try:
            if timeout is not None and timeout <= 0:
                item = results.get_nowait()
            else:
                item = results.get(timeout=timeout)
        except queue_module.Empty:
            return
        acks: list[Job] = []
        while True:
            if item is not None:
                outcome = item.outcome
                if item.seq in self.in_flight and outcome and outcome.settlement == Settlement.ACK:
                    acks.append(item)
                else:
                    self.settle(backend, item)
            try:
                item = results.get_nowait()
            except queue_module.Empty:
                break
        if acks:
            self.settle_acks(backend, acks)

    def settle_acks(self, backend: Backend, jobs: list[Job]) -> None:
        for job in jobs:
            del self.in_flight[job.seq]
            job.settlement = Settlement.ACK
            if self.settled is not None:
                self.settled(job)
        errors: list[Exception | None]
        try:
            errors = list(backend.ack_many([job.delivery for job in jobs]))
        except QueueError as exc:
            errors = [exc] * len(jobs)
        for job, error in zip(jobs, errors, strict=True):
            if error is not None:
                logger.warning("Could not ack message %s: %s", job.message_id, error)
            self.hooks.after_settle(self.view, job, error)

    def settle(self, backend: Backend, job: Job, outcome: Outcome | None = None) -> None:
        if self.in_flight.pop(job.seq, None) is None:
            return  # given back at shutdown already; the late result is void
        if self.settled is not None:
            self.settled(job)
        outcome = outcome or job.outcome or Outcome(Settlement.NOT_ACKED)
        job.settlement = outcome.settlement
        delivery = job.delivery
        error: Exception | None = None
        try:
            if outcome.settlement == Settlement.ACK:
                backend.ack(delivery)
            elif outcome.settlement == Settlement.RETRY:
                backend.retry_later(delivery, outcome.delay or 0.0)
            elif outcome.settlement == Settlement.DEAD_LETTER:
                backend.dead_letter(delivery, outcome.reason)
            elif outcome.settlement == Settlement.NOT_ACKED:
                job.note = backend.not_acked(
                    delivery, int(self.queue.max_attempts), float(self.queue.visibility_timeout)
                )
            else:
                job.note = backend.release(delivery)
        except QueueError as exc:
            error = exc
            logger.warning("Could not %s message %s: %s", outcome.settlement, job.message_id, exc)
        self.hooks.after_settle(self.view, job, error)
