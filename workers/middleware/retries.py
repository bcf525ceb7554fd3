"""Retries: a handler that raises is tried again later with exponential backoff and jitter,
and dead-lettered (with the error, its traceback and the attempt count) on its last attempt.

* attempt ``n`` waits ``b/2 + U(0, b/2)`` seconds with ``b = min(max_delay, base * 2**(n-1))``
  ("equal jitter"): consumers that failed together spread out, and the delay still never
  shrinks from one attempt to the next.
* ``raise Retry(delay)`` or ``ctx.retry(delay)`` choose the delay; ``CircuitOpen`` waits until
  its breaker may close. Each counts as an attempt.
* ``Permanent`` errors (malformed message, unknown handler) are dead-lettered at once.
* The queue's ``max_attempts`` is the limit. How the delay is carried out is the engine's:
  database ``available_at``, SQS ``ChangeMessageVisibility``, Kafka the ``.retry`` topic with
  a not-before header, RabbitMQ the ``.retry`` queue with a per-message TTL (see the backends).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from queues.backoff import backoff
from workers.errors import CircuitOpen, Permanent, Retry
from workers.job import Outcome, Settlement
from workers.middleware.base import Middleware, WorkerView

if TYPE_CHECKING:
    from workers.job import Job

#: SQS caps a visibility change at 12 h; no engine needs longer.
LONGEST_DELAY = 12 * 3600.0


class Retries(Middleware):
    def __init__(self, base_delay: float = 2.0, max_delay: float = 300.0) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay

    def after_process_message(self, worker: WorkerView, job: Job) -> None:
        outcome = job.outcome
        exc = job.exception
        if outcome is None and exc is not None:
            outcome = self._outcome_for(job, exc)
        if outcome is None or outcome.settlement != Settlement.RETRY:
            job.outcome = outcome
            return
        max_attempts = int(worker.queue.max_attempts)
        if job.attempt >= max_attempts:
            job.outcome = Outcome.dead_letter(self._last_words(job, outcome, max_attempts))
            return
        delay = outcome.delay
        if delay is None:
            delay = backoff(job.attempt, self.base_delay, self.max_delay)
        job.outcome = Outcome.retry(min(delay, LONGEST_DELAY), outcome.reason)

    def _outcome_for(self, job: Job, exc: BaseException) -> Outcome:
        error = _error(exc)
        if isinstance(exc, Permanent):
            return Outcome.dead_letter(f"{error} (attempt {job.attempt}; not retried)")
        if isinstance(exc, Retry):
            return Outcome.retry(exc.delay, error)
        if isinstance(exc, CircuitOpen):
            return Outcome.retry(exc.retry_after, error)
        return Outcome.retry(None, error)

    def _last_words(self, job: Job, outcome: Outcome, max_attempts: int) -> str:
        counted = f"attempt {job.attempt} of {max_attempts}"
        if job.exception is None:
            return f"{outcome.reason} Gave up: that was the last attempt ({counted})."
        return f"{outcome.reason} (gave up after {counted})\n{job.traceback}".rstrip()


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
