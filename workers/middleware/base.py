"""The hooks a worker calls, as in Dramatiq's ``Middleware``: cross-cutting behaviour (retries,
leases, the lifecycle log, metrics, heartbeats) lives in one class each, not in the worker.

Which thread calls what matters, because backends are not thread-safe:

* consumer thread (owns the backend): ``after_fetch``, ``on_consumer_tick``, ``after_settle``,
  ``before_worker_shutdown``;
* worker threads (run handlers): ``after_worker_thread_boot``, ``before_process_message``,
  ``after_process_message``, ``before_worker_thread_shutdown``;
* the thread that starts and stops the worker: ``before_worker_boot``, ``after_worker_boot``,
  ``after_worker_shutdown``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from queues.backends.base import Backend
    from workers.job import Job
    from workers.runtime import Worker


class Middleware:
    def before_worker_boot(self, worker: Worker) -> None:
        """Before any thread starts."""

    def after_worker_boot(self, worker: Worker) -> None:
        """Every thread runs; fetching begins."""

    def before_worker_shutdown(self, worker: Worker) -> None:
        """Consumer thread: fetching has stopped for good; in-flight handlers drain next."""

    def after_worker_shutdown(self, worker: Worker) -> None:
        """The consumer thread ended: everything was settled or given back."""

    def after_worker_thread_boot(self, worker: Worker) -> None:
        """In each worker thread, before its first message."""

    def before_worker_thread_shutdown(self, worker: Worker) -> None:
        """In each worker thread that ends normally."""

    def after_fetch(self, worker: Worker, job: Job) -> None:
        """Consumer thread: a delivery was fetched and is about to be handed to a thread."""

    def on_consumer_tick(self, worker: Worker, backend: Backend) -> float | None:
        """Consumer thread, every loop: periodic work with the backend. Returns the seconds
        until it needs to run again (None: no deadline)."""
        return None

    def before_process_message(self, worker: Worker, job: Job) -> None:
        """Worker thread: the handler is about to run."""

    def after_process_message(self, worker: Worker, job: Job) -> None:
        """Worker thread: the handler returned or raised (``job.exception``), or the message
        could not be decoded. May decide ``job.outcome``."""

    def after_settle(self, worker: Worker, job: Job, error: Exception | None) -> None:
        """Consumer thread: the backend carried out ``job.outcome`` (or failed: ``error``)."""
