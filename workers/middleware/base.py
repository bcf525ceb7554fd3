"""The hooks a worker calls, as in Dramatiq's ``Middleware``: cross-cutting behaviour (retries,
leases, the lifecycle log, metrics, heartbeats) lives in one class each, not in the worker.

Each hook is a typed method with a no-op default; a middleware overrides the ones it needs.
The worker calls them through ``workers.middleware.hooks.Hooks`` (in list order, see there),
never by name. A hook gets a ``WorkerView`` — what a middleware may know of the worker — never
the ``Worker``: middleware reads the worker's state and writes to its event sink, it does not
change the worker. Whatever a middleware owns (a thread, counters) stays on the middleware.

Which thread calls what matters, because backends are not thread-safe:

* consumer thread (owns the backend): ``may_fetch``, ``after_fetch``, ``on_consumer_tick``,
  ``after_settle``,
  ``before_worker_shutdown``;
* worker threads (run handlers): ``after_worker_thread_boot``, ``before_process_message``,
  ``after_process_message``, ``before_worker_thread_shutdown``;
* the thread that starts and stops the worker: ``before_worker_boot``, ``after_worker_boot``,
  ``after_worker_shutdown``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from workers.events import Event, EventSink
from workers.models import EventKind, Level

if TYPE_CHECKING:
    from queues.backends.base import Backend
    from queues.models import Queue
    from workers.job import Job
    from workers.options import WorkerOptions


def _none_held() -> int:
    return 0


@dataclass(frozen=True)
class WorkerView:
    """What middleware sees of one worker. Built by the worker when it starts; read-only."""

    queue: Queue
    options: WorkerOptions
    #: The worker's ``WorkerProcess`` row (None for a worker that keeps no row, as in tests).
    process_id: int | None
    #: The worker's lifecycle log; handlers' ``ctx.log`` lines go to the same sink.
    events: EventSink
    #: Fetched, not yet settled, by sequence number: a live read-only view of the consumer
    #: thread's map (other threads may only take its ``len``).
    in_flight: Mapping[int, Job]
    #: The engine leases fetched messages for the queue's visibility timeout (database, SQS).
    leases: bool
    #: How many fetched deliveries wait for their ordering key (``workers.ordering``); any
    #: thread may call it.
    held_back: Callable[[], int] = _none_held

    def warn(self, job: Job, text: str) -> None:
        """A warning about one message in its lifecycle log."""
        self.events.emit(
            Event(
                queue=self.queue.name,
                kind=EventKind.LOG,
                message_id=job.message_id,
                handler=job.handler_name,
                level=Level.WARNING,
                detail=text,
                attempt=job.attempt,
            )
        )


class Middleware:
    def before_worker_boot(self, worker: WorkerView) -> None:
        """Before any thread starts. An exception here stops the worker from starting."""

    def after_worker_boot(self, worker: WorkerView) -> None:
        """Every thread runs; fetching begins."""

    def before_worker_shutdown(self, worker: WorkerView) -> None:
        """Consumer thread: fetching has stopped for good; in-flight handlers drain next."""

    def after_worker_shutdown(self, worker: WorkerView) -> None:
        """The consumer thread ended: everything was settled or given back."""

    def after_worker_thread_boot(self, worker: WorkerView) -> None:
        """In each worker thread, before its first message."""

    def before_worker_thread_shutdown(self, worker: WorkerView) -> None:
        """In each worker thread that ends normally."""

    def after_fetch(self, worker: WorkerView, job: Job) -> None:
        """Consumer thread: a delivery was fetched and is about to be handed to a thread."""

    def may_fetch(self, worker: WorkerView) -> bool:
        """Consumer thread, before each fetch: False holds fetching back (a paused queue);
        ``on_consumer_tick`` deadlines still wake the consumer meanwhile."""
        return True

    def on_consumer_tick(self, worker: WorkerView, backend: Backend) -> float | None:
        """Consumer thread, every loop: periodic work with the backend. Returns the seconds
        until it needs to run again (None: no deadline)."""
        return None

    def before_process_message(self, worker: WorkerView, job: Job) -> None:
        """Worker thread: the handler is about to run."""

    def after_process_message(self, worker: WorkerView, job: Job) -> None:
        """Worker thread: the handler returned or raised (``job.exception``), or the message
        could not be decoded. May decide ``job.outcome``."""

    def after_settle(self, worker: WorkerView, job: Job, error: Exception | None) -> None:
        """Consumer thread: the backend carried out ``job.outcome`` (or failed: ``error``)."""
