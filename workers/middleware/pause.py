"""Pause after failures: a queue with ``pause_after_failures = N`` stops being consumed after N
handler failures in a row, until an admin resumes it (``queues.pausing``).

* Counting is in memory, per process: a failure (the handler raised) adds one, a handler that
  returned sets the count back to 0 — no database query per message. Messages that never
  reached a handler (malformed, unknown handler) do not count: they say nothing of the handler.
  With several threads (and processes) "in a row" is per process and approximate by design.
* At N the worker stops fetching at once (``may_fetch``), writes the pause (one conditional
  UPDATE: of several workers tripping together one pauses, and only that one sends
  ``queue_paused``, which the alerts app turns into an open alert and its notifications), and
  says so in the lifecycle log. Messages in flight finish; the failed ones wait for their retry.
* Every other worker of the queue stops because ``runworkers`` treats a paused queue as a
  disabled one. This worker, while paused (and a worker started on a paused queue), asks the
  database every ``check_seconds`` whether the pause was cleared, and fetches again if so.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.db import DatabaseError, close_old_connections

from queues import pausing
from workers.events import Event
from workers.middleware.base import Middleware, WorkerView
from workers.models import EventKind, Level

if TYPE_CHECKING:
    from queues.backends.base import Backend
    from workers.job import Job

logger = logging.getLogger("workers.pause")


class PauseAfterFailures(Middleware):
    def __init__(
        self, check_seconds: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.check_seconds = check_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._streak = 0
        self._paused = False
        #: A pause this worker decided but could not write yet (database unreachable).
        self._unwritten: tuple[int, str] | None = None
        self._next_check = 0.0

    @property
    def paused(self) -> bool:
        return self._paused

    def before_worker_boot(self, worker: WorkerView) -> None:
        self._paused = worker.queue.paused_at is not None

    def may_fetch(self, worker: WorkerView) -> bool:
        return not self._paused

    def after_process_message(self, worker: WorkerView, job: Job) -> None:
        limit = worker.queue.pause_after_failures
        if not limit or job.handler is None:
            return
        if job.exception is None:
            if self._streak:
                self._streak = 0
            return
        with self._lock:
            self._streak += 1
            if self._paused or self._streak < limit:
                return
            self._paused = True
            failures = self._streak
        reason = f"{type(job.exception).__name__}: {job.exception}"[:500]
        self._next_check = self._clock() + self.check_seconds
        self._write(worker, failures, reason)

    def on_consumer_tick(self, worker: WorkerView, backend: Backend) -> float | None:
        if not self._paused:
            return None
        now = self._clock()
        if now < self._next_check:
            return self._next_check - now
        self._next_check = now + self.check_seconds
        if self._unwritten is not None:
            self._write(worker, *self._unwritten)
            return self.check_seconds
        try:
            paused = pausing.is_paused(worker.queue.pk)
        except DatabaseError as exc:
            logger.warning("Could not read the pause of queue %s: %s", worker.queue.name, exc)
            close_old_connections()
            return self.check_seconds
        if not paused:
            with self._lock:
                self._paused = False
                self._streak = 0
            self._log(worker, Level.INFO, "Queue resumed: fetching again.")
            return None
        return self.check_seconds

    def _write(self, worker: WorkerView, failures: int, reason: str) -> None:
        try:
            paused_now = pausing.pause(worker.queue.pk, failures, reason)
        except DatabaseError as exc:
            logger.warning("Could not pause queue %s (will retry): %s", worker.queue.name, exc)
            close_old_connections()
            self._unwritten = (failures, reason)
            return
        self._unwritten = None
        if paused_now:
            self._log(
                worker,
                Level.ERROR,
                f"Queue paused after {failures} consecutive handler failures (last: {reason}): "
                "no more fetching until an admin resumes it.",
            )

    def _log(self, worker: WorkerView, level: Level, text: str) -> None:
        worker.events.emit(
            Event(queue=worker.queue.name, kind=EventKind.LOG, level=level, detail=text)
        )
