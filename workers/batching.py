"""Batch handlers: gathering the deliveries of one handler into a batch, and running it.

``@handler("sync_orders", batch=100, max_wait=0.5)`` gets up to 100 messages in one call, so it
can write them to a downstream system in bulk, and settles each one on its own.

Where the work happens, and why:

* Gathering is the consumer thread's (``Batcher``): it already owns the in-flight map and the
  fetch sizes, so deciding there which delivery waits for a batch keeps every count in one
  thread, without locks. When the registry has batch handlers it decodes each delivery to
  read the handler's name (the worker thread then reuses the decoded message); a registry
  without them never pays for it.
* A batch is closed when it holds ``batch`` messages, or ``max_wait`` seconds after its first
  message arrived; then it goes to the worker threads as one item. One thread runs it (a
  batch takes one of the ``--concurrency`` threads; several batches, of one handler or of
  several, may run at once on several threads, beside single handlers).
* Messages waiting in an open batch are in flight like any other (their leases are extended,
  shutdown gives them back unrun) but take no thread, so a worker with 10 threads can gather
  a batch of 100. While a batch is open, the fetch asks for the free threads plus the room
  left in it (see ``Batcher.room``), so a batch fills in a fetch or two where the engine
  allows it.
* Every message then goes through the same middleware and the same settlement as a single
  handler's: its own ``started``/``complete`` lifecycle lines, acknowledgements in one
  ``ack_many``, retries with the queue's backoff and dead letters one by one. A message the
  handler left unsettled is treated as a single handler's would be; when the handler raises,
  every message gets the exception, so those it had not settled are retried (or
  dead-lettered on their last attempt). On Kafka each settlement goes through the offset
  tracker as any other, so the committed offset never passes a message of a batch that is
  not settled yet.
"""

from __future__ import annotations

import itertools
import time
import traceback
from dataclasses import dataclass, field

from workers.context import BatchContext, BatchMessage, Publisher
from workers.errors import Permanent
from workers.job import Job
from workers.message import decode
from workers.middleware import Hooks, WorkerView
from workers.registry import Handler, Registry


@dataclass(eq=False)
class Batch:
    """Deliveries for one batch handler, gathered until full or due, then run as one call."""

    id: int
    handler: Handler
    #: ``time.monotonic()`` after which the batch runs with what it has.
    due_at: float
    jobs: list[Job] = field(default_factory=list)


class Batcher:
    """The open batches of one worker, per handler. Consumer thread only."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._open: dict[str, Batch] = {}
        self._closed: list[Batch] = []
        #: Closed batches not fully settled yet, by id: how many of their jobs are left.
        self._unsettled: dict[int, int] = {}
        self._gathered = 0  # jobs in open batches
        self._members = 0  # jobs in closed, unsettled batches
        self._ids = itertools.count(1)

    @property
    def active(self) -> bool:
        """The registry has batch handlers: deliveries must be routed."""
        return bool(self.registry.batch_sizes)

    @property
    def gathering(self) -> bool:
        return bool(self._open)

    @property
    def largest(self) -> int:
        return max(self.registry.batch_sizes.values(), default=0)

    @property
    def held(self) -> int:
        """In-flight jobs that take no thread of their own: those in open batches, and all but
        one of each closed batch (the batch takes one thread)."""
        return self._gathered + self._members - len(self._unsettled)

    def room(self) -> int:
        """How many more deliveries one fetch may bring beyond the free threads: the most an
        open batch still lacks. None open, none more: a queue whose messages are all for
        single handlers is fetched as if there were no batch handlers (the handlers are the
        process's, not the queue's, and over-fetching would starve the queue's other
        workers); the first batch message opens a batch, and the next fetches fill it."""
        return (
            max((b.handler.batch or 1) - len(b.jobs) for b in self._open.values())
            if self._open
            else 0
        )

    def add(self, job: Job) -> bool:
        """Take ``job`` into its handler's open batch; False when it is not a batch
        handler's (a worker thread runs it alone, and dead-letters it if it is malformed)."""
        try:
            job.message = decode(job.delivery)
        except Permanent:
            return False
        handler = self.registry.find(job.message.handler)
        if handler is None or handler.batch is None:
            return False
        batch = self._open.get(handler.name)
        if batch is None:
            batch = Batch(next(self._ids), handler, time.monotonic() + handler.max_wait)
            self._open[handler.name] = batch
        job.handler = handler
        job.batch = batch.id
        batch.jobs.append(job)
        self._gathered += 1
        if len(batch.jobs) >= handler.batch:
            self._close(batch)
        return True

    def take_ready(self, now: float) -> list[Batch]:
        """The batches to run now: those full, and those whose ``max_wait`` is over."""
        for batch in list(self._open.values()):
            if now >= batch.due_at:
                self._close(batch)
        ready, self._closed = self._closed, []
        return ready

    def next_due(self, now: float) -> float | None:
        """Seconds until the next open batch is due (None: none is open)."""
        if not self._open:
            return None
        return max(0.0, min(batch.due_at for batch in self._open.values()) - now)

    def settled(self, job: Job) -> None:
        """The consumer thread settled ``job`` (or gave it back): update the counts."""
        if job.batch is None:
            return
        left = self._unsettled.get(job.batch)
        if left is not None:
            self._members -= 1
            if left <= 1:
                del self._unsettled[job.batch]
            else:
                self._unsettled[job.batch] = left - 1
            return
        for name, batch in self._open.items():  # given back while it was gathered
            if batch.id == job.batch and job in batch.jobs:
                batch.jobs.remove(job)
                self._gathered -= 1
                if not batch.jobs:
                    del self._open[name]
                return

    def clear(self) -> None:
        """Shutdown: no batch is closed any more; the gathered jobs are given back unrun."""
        self._open.clear()
        self._gathered = 0

    def _close(self, batch: Batch) -> None:
        del self._open[batch.handler.name]
        count = len(batch.jobs)
        self._gathered -= count
        self._members += count
        self._unsettled[batch.id] = count
        self._closed.append(batch)


def run_batch(
    handler: Handler, jobs: list[Job], hooks: Hooks, view: WorkerView, publisher: Publisher
) -> None:
    """Worker thread: call the batch handler once with the jobs' messages, then give each job
    the outcome of its own message (or the handler's exception) through the middleware."""
    messages: list[BatchMessage] = []
    for job in jobs:
        assert job.message is not None  # decoded when the batch was gathered
        job.handler = handler
        hooks.before_process_message(view, job)
        messages.append(
            BatchMessage(
                job.message.body,
                queue=view.queue,
                delivery=job.delivery,
                handler=handler.name,
                events=view.events,
                publisher=publisher,
            )
        )
    given = list(messages)  # the handler may reorder or empty its list; ours stays
    ctx = BatchContext(
        queue=view.queue,
        handler=handler.name,
        messages=given,
        events=view.events,
        publisher=publisher,
    )
    error: BaseException | None = None
    trace = ""
    started = time.monotonic()
    try:
        handler(given, ctx)
    except BaseException as exc:  # a handler's SystemExit must not kill the thread
        error, trace = exc, traceback.format_exc()
    finished = time.monotonic()
    for job, message in zip(jobs, messages, strict=True):
        job.started_at, job.finished_at = started, finished
        job.exception, job.traceback = error, trace
        job.outcome = message.outcome
        hooks.after_process_message(view, job)
