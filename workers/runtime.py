"""The worker runtime: one process serves one queue, running up to N handlers at once.

Threading model (Dramatiq's, for the same reason: broker clients are not thread-safe)::

                 ┌──────────────────── consumer thread ─────────────────────┐
    engine ◄────►│ fetch(free slots) · ack / retry_later / dead_letter ·     │
                 │ extend leases · release at shutdown      (owns the backend)│
                 └──────┬───────────────────────────────────────▲─────────┘
                        │ work queue (Job)                      │ results queue (Job)
                 ┌──────▼───────────────────────────────────────┴─────────┐
                 │ N worker threads: decode · handler(message, ctx) ·      │
                 │ middleware decides the outcome          (never touch it)│
                 └─────────────────────────────────────────────────────────┘

* One backend instance, used only by the consumer thread: Kafka's offsets and RabbitMQ's
  channel acks must be settled by the client that fetched the message anyway.
* Bounded prefetch: a delivery counts as in flight from fetch until it is settled, and the
  consumer never fetches more than ``concurrency - in_flight``; so at most N messages are
  fetched-but-unfinished and every fetched message has a free thread. (RabbitMQ's basic.qos
  is 2N: N more wait unstarted in the backend's buffer, see ``Backend.prepare``.)
* Per-key order (``workers.ordering``, the queue's ``ordered_by_key``): a delivery whose
  ordering key has a message running or retrying waits in the worker, takes no thread, and
  counts against in flight up to ``max_held_back`` beyond the threads.
* Batch handlers (``workers.batching``): the consumer gathers their deliveries into batches
  (which take no thread while they fill) and hands each closed batch to one worker thread.
* Finished jobs are settled in a batch by ``workers.settlement.Settler``: every ready
  acknowledgement goes in one ``Backend.ack_many`` (one round trip on each engine).
* Fetching waits (long polls) only when nothing is in flight; while handlers run the consumer
  polls without waiting and otherwise blocks on the results queue, so an acknowledgement is
  carried out as soon as the handler returns, not after a long poll.
* Handlers decide (``ctx.ack()`` …) on the worker threads (``workers.handling``); the
  consumer thread carries the decision out after the handler returned. Cross-cutting
  behaviour is middleware (``workers.middleware``), called through ``Hooks`` in list order
  with a read-only ``WorkerView`` of the worker, never the worker itself. The worker owns its
  event sink (an ``EventWriter``: the lifecycle log and the handlers' ``ctx.log`` lines) and
  its ``WorkerProcess`` row, created in ``start``.

Shutdown (``stop``, on SIGTERM): no new fetches; deliveries fetched but not started are given
back at once; in-flight handlers get ``drain_seconds`` to finish and be settled; what is still
running then is given back (``Backend.release``), the backend is closed and the process may
exit: worker threads are daemons, a stuck handler does not hold the process.
"""

from __future__ import annotations

import logging
import os
import queue as queue_module
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from types import MappingProxyType
from typing import TypeVar

from django.db import connections

from queues.backends import backend_class, get_backend
from queues.backends.base import Backend
from queues.errors import QueueError
from queues.messages import Delivery
from queues.models import Queue
from workers.batching import Batch, Batcher
from workers.events import Event, EventWriter
from workers.handling import Handling
from workers.job import Job, Outcome, Settlement
from workers.middleware import (
    DatabaseConnections,
    Heartbeat,
    Hooks,
    LeaseExtension,
    LifecycleLog,
    LogContext,
    Metrics,
    Middleware,
    PauseAfterFailures,
    Retries,
    WorkerView,
)
from workers.models import EventKind, Level, WorkerProcess
from workers.options import WorkerOptions
from workers.ordering import KeyOrder
from workers.registry import Registry
from workers.registry import registry as default_registry
from workers.settlement import Settler

logger = logging.getLogger("workers.runtime")

M = TypeVar("M", bound=Middleware)


def default_middleware(options: WorkerOptions) -> list[Middleware]:
    """The middleware of a ``runworker`` process, in the order their hooks run (see
    ``workers.middleware.hooks``). ``Retries`` is last, so the others' ``after_process_message``
    see the handler's own outcome (``LifecycleLog`` tells "raised after ctx.ack()" by it);
    ``LogContext`` comes after it, to log the decision."""
    metrics = Metrics()
    return [
        DatabaseConnections(),
        Heartbeat(options.heartbeat_seconds, metrics),
        metrics,
        LifecycleLog(),
        LeaseExtension(),
        PauseAfterFailures(),
        Retries(options.retry_base_delay, options.retry_max_delay),
        LogContext(),
    ]


class Worker:
    """Serves one queue: ``start()``, then ``stop()`` (drains) from the same thread."""

    def __init__(
        self,
        queue: Queue,
        *,
        registry: Registry | None = None,
        options: WorkerOptions | None = None,
        middleware: Sequence[Middleware] | None = None,
        backend_factory: Callable[[Queue], Backend] = get_backend,
    ) -> None:
        self.queue = queue
        self.registry = registry if registry is not None else default_registry
        self.options = options or WorkerOptions()
        self.middleware = (
            list(middleware) if middleware is not None else default_middleware(self.options)
        )
        self.hooks = Hooks(self.middleware)
        self.backend_factory = backend_factory
        #: The lifecycle log; its thread runs from ``start`` to the end of ``stop``.
        self.events = EventWriter()
        #: This process's ``WorkerProcess`` row, created by ``start``.
        self.process_id: int | None = None
        #: Fetched, not yet settled; owned by the consumer thread (others only read len()).
        self.in_flight: dict[int, Job] = {}
        #: Per-key order of single handlers' messages (None: off for this queue).
        self.order = KeyOrder.for_worker(
            queue, self.options, locks_keys=backend_class(queue.type).locks_keys(queue)
        )
        #: What middleware sees of this worker (``process_id`` filled in by ``start``).
        self.view = WorkerView(
            queue=queue,
            options=self.options,
            process_id=None,
            events=self.events,
            in_flight=MappingProxyType(self.in_flight),
            leases=backend_class(queue.type).leases,
            held_back=self._held_back,
        )
        #: Gathers batch handlers' deliveries into batches (consumer thread only).
        self.batcher = Batcher(self.registry)
        #: Carries out the handlers' decisions with the engine (consumer thread only).
        self.settler = Settler(queue, self.in_flight, self.hooks, self.view, settled=self._settled)
        #: Set by an unexpected error in the consumer thread (the process should exit non-zero).
        self.error: BaseException | None = None
        #: Set when the consumer thread has ended (stopped, or failed).
        self.finished = threading.Event()
        self._drain_seconds = self.options.drain_seconds
        self._stopping = threading.Event()
        self._work: queue_module.SimpleQueue[Job | Batch | None] = queue_module.SimpleQueue()
        self._results: queue_module.SimpleQueue[Job | None] = queue_module.SimpleQueue()
        self._seq = 0
        self._fetch_not_before = 0.0
        self._consumer: threading.Thread | None = None
        self._threads: list[threading.Thread] = []
        self._stopped = False

    # -- control (the owner's thread) -------------------------------------------------------

    def start(self) -> None:
        process = WorkerProcess.objects.create(
            queue=self.queue,
            host=socket.gethostname(),
            pid=os.getpid(),
            concurrency=self.options.concurrency,
        )
        self.process_id = self.events.worker_id = process.pk
        self.view = self.settler.view = replace(self.view, process_id=process.pk)
        self.events.start()
        try:
            self.hooks.before_worker_boot(self.view)
        except BaseException:
            self.events.stop()
            raise
        handling = Handling(
            queue=self.queue,
            registry=self.registry,
            hooks=self.hooks,
            view=self.view,
            events=self.events,
            work=self._work,
            results=self._results,
        )
        for index in range(self.options.concurrency):
            thread = threading.Thread(
                target=handling.run, name=f"worker-{self.queue.name}-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        self._consumer = threading.Thread(
            target=self._consume, name=f"consumer-{self.queue.name}", daemon=True
        )
        self._consumer.start()
        self.hooks.after_worker_boot(self.view)

    def stop(self, drain_seconds: float | None = None) -> None:
        """Stop fetching, let in-flight handlers finish (at most ``drain_seconds``), give the
        rest back, and end the threads. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if drain_seconds is not None:
            self._drain_seconds = drain_seconds
        self._stopping.set()
        self._results.put(None)  # wake the consumer if it waits for results
        if self._consumer is not None:
            # A fetch in progress may long-poll for up to poll_seconds (20 s at most).
            self._consumer.join(self._drain_seconds + self.options.poll_seconds + 60)
        for _ in self._threads:
            self._work.put(None)
        deadline = time.monotonic() + 2.0
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.hooks.after_worker_shutdown(self.view)
        self.events.stop()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def _held_back(self) -> int:
        return self.order.held if self.order is not None else 0

    def find(self, kind: type[M]) -> M | None:
        """The first middleware of this kind (for the worker's owner: tests, the bench)."""
        for middleware in self.middleware:
            if isinstance(middleware, kind):
                return middleware
        return None

    # -- consumer thread --------------------------------------------------------------------

    def _consume(self) -> None:
        backend: Backend | None = None
        try:
            backend = self.backend_factory(self.queue)
            # A batch's messages are all unacknowledged at once (RabbitMQ's prefetch must let
            # a whole batch in, beside a message per thread).
            backend.prepare(self.options.concurrency + self.batcher.largest)
            self._loop(backend)
            self._drain(backend)
        except Exception as exc:
            self.error = exc
            logger.exception("The consumer of queue %s failed", self.queue.name)
            self._stopping.set()
            if backend is not None:
                self._give_back_all(backend)
        finally:
            if backend is not None:
                try:
                    backend.close()
                except Exception:
                    logger.exception("Closing the backend of queue %s failed", self.queue.name)
            connections.close_all()
            self.finished.set()

    def _loop(self, backend: Backend) -> None:
        errors = 0
        concurrency = self.options.concurrency
        batcher = self.batcher
        while not self._stopping.is_set():
            self.settler.settle_ready(backend, self._results, timeout=0)
            wake = self.hooks.next_deadline(self.view, backend)
            now = time.monotonic()
            due = None
            if batcher.gathering:
                self._dispatch_batches(now)
                due = batcher.next_due(now)
                wake = due if wake is None else wake if due is None else min(wake, due)
            if self.order is not None:  # keys whose wait for a retry is over; the next one's
                ends = self.order.tick(now, self._work.put, partial(self._give_back, backend))
                wake = ends if wake is None else wake if ends is None else min(wake, ends)
            queued = len(self.in_flight) - batcher.held  # each takes a thread, or waits
            running = queued - self._held_back()
            free = concurrency - running
            if self.order is not None:  # held-back deliveries count, up to the cap
                free = min(free, concurrency + self.order.cap - queued)
            if free > 0 and not self.hooks.may_fetch(self.view):
                free = 0  # held back (a paused queue): wait for results or a deadline
            timeout: float | None = None
            if free > 0 and now >= self._fetch_not_before:
                busy = running > 0
                # Idle but gathering: wait for more messages only until the batch is due.
                wait = 0.0 if busy else self.options.poll_seconds
                if due is not None:
                    wait = min(wait, due)
                want = free + batcher.room()
                try:
                    deliveries = backend.fetch(want, wait)
                except QueueError as exc:
                    errors += 1
                    delay = min(self.options.max_error_backoff, 0.5 * 2 ** (errors - 1))
                    self._fetch_failed(exc, errors, delay)
                    self._fetch_not_before = time.monotonic() + delay
                    continue
                errors = 0
                if deliveries:
                    if self._stopping.is_set():
                        self._give_back_unrun(backend, deliveries, now)
                        break
                    self._dispatch(deliveries, now)
                    continue
                if busy:
                    timeout = self.options.busy_poll_seconds
                else:
                    # The fetch waited; if it returned early (an SQS short poll, say), wait
                    # out the rest so that an empty queue is not polled in a tight loop.
                    timeout = wait - (time.monotonic() - now)
                    if timeout <= 0:
                        continue
            elif free > 0:
                timeout = self._fetch_not_before - now
            if wake is not None:
                timeout = wake if timeout is None else min(timeout, wake)
            self.settler.settle_ready(backend, self._results, timeout=timeout)

    def _drain(self, backend: Backend) -> None:
        self.hooks.before_worker_shutdown(self.view)
        self.batcher.clear()  # batches still gathering are given back unrun, below
        for job in list(self.in_flight.values()):
            if job.cancel():
                self.settler.settle(backend, job, Outcome(Settlement.RELEASE))
        deadline = time.monotonic() + self._drain_seconds
        while self.in_flight:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            wake = self.hooks.next_deadline(self.view, backend)
            self.settler.settle_ready(
                backend, self._results, timeout=remaining if wake is None else min(remaining, wake)
            )
        for job in list(self.in_flight.values()):
            logger.warning(
                "Handler for %s still running after %ss: giving the message back",
                job.message_id,
                self._drain_seconds,
            )
            self.settler.settle(backend, job, Outcome(Settlement.RELEASE))

    def _give_back_all(self, backend: Backend) -> None:
        """After an unexpected error: give back what can be given back, as best we can (what
        cannot, comes back when its lease ends or when the backend closes)."""
        for job in list(self.in_flight.values()):
            try:
                self.settler.settle(backend, job, Outcome(Settlement.RELEASE))
            except Exception:
                logger.exception("Could not give message %s back", job.message_id)

    def _dispatch(self, deliveries: list[Delivery], fetched_at: float) -> None:
        gather = self.batcher.active
        order = self.order
        for job in self._jobs(deliveries, fetched_at):
            if gather and self.batcher.add(job):
                continue
            for ready in order.admit(job, fetched_at) if order is not None else [job]:
                self._work.put(ready)
        if gather:
            self._dispatch_batches(time.monotonic())

    def _settled(self, job: Job) -> None:
        """``job`` left ``in_flight``: the batcher's counts, and the next job of its key."""
        self.batcher.settled(job)
        if self.order is not None:
            ready_jobs = self.order.settled(job, time.monotonic())
            if self._stopping.is_set():
                return  # what waited is given back unrun by the drain
            for ready in ready_jobs:
                self._work.put(ready)

    def _give_back(self, backend: Backend, job: Job, delay: float) -> None:
        """A delivery held back for its key, given back to the engine unrun as a retry after
        ``delay`` (a delivery counted; what is given back together keeps its order)."""
        if job.cancel():
            self.settler.settle(backend, job, Outcome.retry(delay, "held back behind a retry"))

    def _dispatch_batches(self, now: float) -> None:
        for batch in self.batcher.take_ready(now):
            self._work.put(batch)

    def _give_back_unrun(
        self, backend: Backend, deliveries: list[Delivery], fetched_at: float
    ) -> None:
        """Fetched as the stop came: give them back without running them."""
        for job in self._jobs(deliveries, fetched_at):
            job.cancel()
            self.settler.settle(backend, job, Outcome(Settlement.RELEASE))

    def _jobs(self, deliveries: list[Delivery], fetched_at: float) -> list[Job]:
        jobs = []
        for delivery in deliveries:
            self._seq += 1
            job = Job(self._seq, delivery, fetched_at)
            self.in_flight[job.seq] = job
            self.hooks.after_fetch(self.view, job)
            jobs.append(job)
        return jobs

    def _fetch_failed(self, exc: Exception, errors: int, delay: float) -> None:
        logger.warning(
            "Fetching from queue %s failed (%d in a row; next try in %.1fs): %s",
            self.queue.name,
            errors,
            delay,
            exc,
        )
        if errors in (1, 10) or errors % 100 == 0:
            self.events.emit(
                Event(
                    queue=self.queue.name,
                    kind=EventKind.LOG,
                    level=Level.ERROR,
                    detail=f"Fetching failed ({errors} in a row): {exc}",
                )
            )
