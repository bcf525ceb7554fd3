"""Counters and handler timings of one worker process: kept here for the heartbeat to store
on the process row, and counted in the Prometheus families of ``quaymaster.metrics``
(fetched, settled by handler and outcome, handler duration, in flight, prefetch, held back
by per-key order). Label children are looked up once per queue, handler and outcome; nothing
here touches the database."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from quaymaster import metrics as prometheus
from workers.job import Settlement
from workers.middleware.base import Middleware, WorkerView

if TYPE_CHECKING:
    from queues.backends.base import Backend
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


#: ``quaymaster_worker_settled_total``'s outcome label for each settlement.
OUTCOMES = {
    Settlement.ACK: "acked",
    Settlement.RETRY: "retried",
    Settlement.DEAD_LETTER: "dead_lettered",
    Settlement.NOT_ACKED: "not_acked",
    Settlement.RELEASE: "released",
}
#: The handler label of a message whose handler is not registered here (or that could not
#: be decoded): the name a message asks for is not a label, or any sender could add series.
UNKNOWN_HANDLER = "unknown"


class Metrics(Middleware):
    def __init__(self) -> None:
        self._counts = Counts()
        self._lock = threading.Lock()
        self._children: dict[tuple[Any, ...], Any] = {}
        self._held = 0  # reported to quaymaster_worker_held_back (consumer thread)

    def _child(self, family: Any, *labels: str) -> Any:
        key = (family, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = family.labels(*labels)
        return child

    def after_worker_boot(self, worker: WorkerView) -> None:
        self._child(prometheus.WORKER_PREFETCH, worker.queue.name).inc(worker.options.concurrency)

    def after_worker_shutdown(self, worker: WorkerView) -> None:
        self._child(prometheus.WORKER_PREFETCH, worker.queue.name).dec(worker.options.concurrency)
        if self._held:
            self._child(prometheus.WORKER_HELD_BACK, worker.queue.name).dec(self._held)
            self._held = 0

    def on_consumer_tick(self, worker: WorkerView, backend: Backend) -> float | None:
        held = worker.held_back()
        if held != self._held:
            self._child(prometheus.WORKER_HELD_BACK, worker.queue.name).inc(held - self._held)
            self._held = held
        return None

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return asdict(self._counts)

    def after_fetch(self, worker: WorkerView, job: Job) -> None:
        with self._lock:
            self._counts.fetched += 1
        self._child(prometheus.WORKER_FETCHED, worker.queue.name).inc()
        self._child(prometheus.WORKER_IN_FLIGHT, worker.queue.name).inc()

    def after_process_message(self, worker: WorkerView, job: Job) -> None:
        handler = job.handler.name if job.handler is not None else UNKNOWN_HANDLER
        if job.started_at is not None and job.finished_at is not None:
            self._child(prometheus.HANDLER_DURATION, worker.queue.name, handler).observe(
                max(0.0, job.finished_at - job.started_at)
            )
        if job.exception is not None:
            self._child(prometheus.HANDLER_FAILURES, worker.queue.name, handler).inc()
        duration = job.duration_ms
        with self._lock:
            if job.exception is not None:
                self._counts.failed += 1
            if duration is not None:
                self._counts.handled += 1
                self._counts.handler_ms_total += duration
                self._counts.handler_ms_max = max(self._counts.handler_ms_max, duration)

    def after_settle(self, worker: WorkerView, job: Job, error: Exception | None) -> None:
        queue = worker.queue.name
        self._child(prometheus.WORKER_IN_FLIGHT, queue).dec()
        if error is not None:
            self._child(prometheus.WORKER_SETTLE_ERRORS, queue).inc()
        elif job.settlement is not None:
            handler = job.handler.name if job.handler is not None else UNKNOWN_HANDLER
            self._child(prometheus.WORKER_SETTLED, queue, handler, OUTCOMES[job.settlement]).inc()
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
