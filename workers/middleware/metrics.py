"""Counters and handler timings of one worker process (the heartbeat stores them)."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from workers.job import Settlement
from workers.middleware.base import Middleware, WorkerView

if TYPE_CHECKING:
    from workers.job import Job


@dataclass
class Counts:
    fetched: int = 0
    processed: int = 0  # acknowledged
    failed: int = 0  # the handler raised (or the message could not be decoded)
    retried: int = 0
    dead_lettered: int = 0
    not_acked: int = 0
    released: int = 0
    settle_errors: int = 0
    handler_ms_total: int = 0
    handler_ms_max: int = 0
    handled: int = 0  # handler runs timed


class Metrics(Middleware):
    def __init__(self) -> None:
        self._counts = Counts()
        self._lock = threading.Lock()

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return asdict(self._counts)

    def after_fetch(self, worker: WorkerView, job: Job) -> None:
        with self._lock:
            self._counts.fetched += 1

    def after_process_message(self, worker: WorkerView, job: Job) -> None:
        duration = job.duration_ms
        with self._lock:
            if job.exception is not None:
                self._counts.failed += 1
            if duration is not None:
                self._counts.handled += 1
                self._counts.handler_ms_total += duration
                self._counts.handler_ms_max = max(self._counts.handler_ms_max, duration)

    def after_settle(self, worker: WorkerView, job: Job, error: Exception | None) -> None:
        with self._lock:
            if error is not None:
                self._counts.settle_errors += 1
                return
            settlement = job.settlement
            if settlement == Settlement.ACK:
                self._counts.processed += 1
            elif settlement == Settlement.RETRY:
                self._counts.retried += 1
            elif settlement == Settlement.DEAD_LETTER:
                self._counts.dead_lettered += 1
            elif settlement == Settlement.NOT_ACKED:
                self._counts.not_acked += 1
            elif settlement == Settlement.RELEASE:
                self._counts.released += 1
