"""The handler threads' side of a worker (``workers.runtime``): each of the N threads takes a
``Job`` (or a closed ``Batch``) from the work queue, decodes it, runs its handler with a
``Context``, lets middleware decide the outcome, and puts the job on the results queue for the
consumer thread to settle. Nothing here touches the backend: the consumer thread owns it."""

from __future__ import annotations

import logging
import queue as queue_module
import time
import traceback

from queues.models import Queue
from workers.batching import Batch, run_batch
from workers.context import Context, Publisher
from workers.errors import Permanent
from workers.events import EventWriter
from workers.job import Job, Outcome
from workers.message import decode
from workers.middleware import Hooks, WorkerView
from workers.registry import Handler, Registry

logger = logging.getLogger("workers.runtime")


class Handling:
    """What the handler threads of one worker share; ``run`` is each thread's loop."""

    def __init__(
        self,
        *,
        queue: Queue,
        registry: Registry,
        hooks: Hooks,
        view: WorkerView,
        events: EventWriter,
        work: queue_module.SimpleQueue[Job | Batch | None],
        results: queue_module.SimpleQueue[Job | None],
    ) -> None:
        self.queue = queue
        self.registry = registry
        self.hooks = hooks
        self.view = view
        self.events = events
        self.work = work
        self.results = results

    def run(self) -> None:
        """Handle jobs until the worker puts ``None`` on the work queue."""
        publisher = Publisher()
        self.hooks.after_worker_thread_boot(self.view)
        try:
            while True:
                job = self.work.get()
                if job is None:
                    break
                if isinstance(job, Batch):
                    self._run_batch(job.handler, [j for j in job.jobs if j.claim()], publisher)
                    continue
                if not job.claim():
                    continue
                try:
                    self._process(job, publisher)
                except BaseException:
                    logger.exception("Processing %s failed in the worker itself", job.message_id)
                finally:
                    self.results.put(job)
        finally:
            try:
                publisher.close()
            finally:
                self.hooks.before_worker_thread_shutdown(self.view)

    def _run_batch(self, handler: Handler, jobs: list[Job], publisher: Publisher) -> None:
        try:
            if jobs:
                run_batch(handler, jobs, self.hooks, self.view, publisher)
        except BaseException:
            logger.exception("Processing a batch of %s failed in the worker itself", handler.name)
        finally:
            for job in jobs:
                self.results.put(job)

    def _process(self, job: Job, publisher: Publisher) -> None:
        try:
            if job.message is None:  # else decoded by the batcher already
                job.message = decode(job.delivery)
            handler = self.registry.get(job.message.handler)
        except Permanent as exc:
            job.exception = exc
            job.outcome = Outcome.dead_letter(f"{type(exc).__name__}: {exc}")
            self.hooks.after_process_message(self.view, job)
            return
        job.handler = handler
        if handler.batch is not None:  # registered after its message was routed: alone
            run_batch(handler, [job], self.hooks, self.view, publisher)
            return
        self.hooks.before_process_message(self.view, job)
        ctx = Context(
            queue=self.queue,
            delivery=job.delivery,
            handler=job.handler.name,
            events=self.events,
            publisher=publisher,
        )
        job.started_at = time.monotonic()
        try:
            job.handler(job.message.body, ctx)
        except BaseException as exc:  # a handler's SystemExit must not kill the thread
            job.exception = exc
            job.traceback = traceback.format_exc()
        finally:
            job.finished_at = time.monotonic()
        job.outcome = ctx.outcome
        self.hooks.after_process_message(self.view, job)
