"""How the worker calls its middleware: one typed method per hook, in one documented order.

Order: every hook runs over the middleware in the order the worker was given them (the same
order for "before" and "after" hooks, as in Dramatiq). Order matters in one place, and
``workers.runtime.default_middleware`` is arranged for it: ``after_process_message`` may
decide ``job.outcome`` (``Retries`` does), so a middleware listed before the one that decides
sees the handler's own outcome and one listed after sees the decision. ``after_settle`` and
everything later see the final outcome whatever the order.

Failures: a middleware that raises in ``before_worker_boot`` stops the worker from starting
(the exception reaches ``Worker.start``); in any other hook it is logged and the remaining
middleware still run — a broken metrics counter must not lose a message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from workers.middleware.base import Middleware, WorkerView

if TYPE_CHECKING:
    from queues.backends.base import Backend
    from workers.job import Job

logger = logging.getLogger("workers.runtime")


class Hooks:
    """Dispatches each hook to every middleware, in order."""

    def __init__(self, middleware: Sequence[Middleware]) -> None:
        self.middleware = tuple(middleware)

    def before_worker_boot(self, worker: WorkerView) -> None:
        for middleware in self.middleware:
            middleware.before_worker_boot(worker)

    def after_worker_boot(self, worker: WorkerView) -> None:
        self._each("after_worker_boot", lambda m: m.after_worker_boot(worker))

    def before_worker_shutdown(self, worker: WorkerView) -> None:
        self._each("before_worker_shutdown", lambda m: m.before_worker_shutdown(worker))

    def after_worker_shutdown(self, worker: WorkerView) -> None:
        self._each("after_worker_shutdown", lambda m: m.after_worker_shutdown(worker))

    def after_worker_thread_boot(self, worker: WorkerView) -> None:
        self._each("after_worker_thread_boot", lambda m: m.after_worker_thread_boot(worker))

    def before_worker_thread_shutdown(self, worker: WorkerView) -> None:
        self._each(
            "before_worker_thread_shutdown", lambda m: m.before_worker_thread_shutdown(worker)
        )

    def after_fetch(self, worker: WorkerView, job: Job) -> None:
        self._each("after_fetch", lambda m: m.after_fetch(worker, job))

    def before_process_message(self, worker: WorkerView, job: Job) -> None:
        self._each("before_process_message", lambda m: m.before_process_message(worker, job))

    def after_process_message(self, worker: WorkerView, job: Job) -> None:
        self._each("after_process_message", lambda m: m.after_process_message(worker, job))

    def after_settle(self, worker: WorkerView, job: Job, error: Exception | None) -> None:
        self._each("after_settle", lambda m: m.after_settle(worker, job, error))

    def may_fetch(self, worker: WorkerView) -> bool:
        """Whether every middleware lets the consumer fetch (one that fails lets it)."""
        for middleware in self.middleware:
            try:
                if not middleware.may_fetch(worker):
                    return False
            except Exception:
                logger.exception("Middleware %s.may_fetch failed", type(middleware).__name__)
        return True

    def next_deadline(self, worker: WorkerView, backend: Backend) -> float | None:
        """Run every ``on_consumer_tick``; the soonest of their deadlines (None: none)."""
        soonest: float | None = None
        for middleware in self.middleware:
            try:
                due = middleware.on_consumer_tick(worker, backend)
            except Exception:
                logger.exception("Middleware %s.on_consumer_tick failed", type(middleware).__name__)
                continue
            if due is not None:
                soonest = due if soonest is None else min(soonest, due)
        return soonest

    def _each(self, hook: str, call: Callable[[Middleware], None]) -> None:
        for middleware in self.middleware:
            try:
                call(middleware)
            except Exception:
                logger.exception("Middleware %s.%s failed", type(middleware).__name__, hook)
