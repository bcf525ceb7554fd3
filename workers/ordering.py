"""Per-key order inside one worker: messages with one ordering key (a record event's
``table:record id``) run one at a time, in the order they arrived; different keys run in
parallel up to the concurrency; messages without a key run freely.

``KeyOrder`` is pure bookkeeping for the consumer thread (no locks, no engine): the worker asks
``admit`` for each fetched job whether it may run now, tells ``settled`` each job that left the
in-flight map, and gets back the jobs that may run next.

A key whose message is retried holds back only that key's later messages:

* on engines that lock a key while any of its messages is out (an SQS FIFO group:
  ``Backend.locks_keys``) the held followers are given straight back; the engine delivers them
  again after the retried one;
* elsewhere (database, SQS standard, Kafka's ``.retry`` topic, RabbitMQ's ``.retry`` queue) a
  retry goes back to the engine while later messages of the key may arrive at once, so the key
  waits in the worker, its followers fetched but not run (their leases extended, Kafka's commit
  held below them), until the retried message comes back and settles. It may come back to
  another worker process: the wait ends ``grace`` seconds after the retry was due, and the
  followers run.

Bounds: held-back jobs count against the worker's in flight (``cap`` more than the threads,
see ``Worker._loop``), so fetching never runs away; when more than ``cap`` wait behind retries,
the waiting keys' followers are given back to the engine (``overflow``) rather than kept.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from workers.job import Job, Settlement

if TYPE_CHECKING:
    from queues.models import Queue
    from workers.options import WorkerOptions


@dataclass
class _Key:
    running: Job | None = None
    waiting: deque[Job] = field(default_factory=deque)
    #: The retried message the key waits for, and until when (``time.monotonic()``).
    retried: str | None = None
    until: float = 0.0


class KeyOrder:
    """The keys of one worker's in-flight jobs. Consumer thread only."""

    def __init__(
        self, cap: int, grace: float, *, locks_keys: bool = False, not_acked_delay: float = 0.0
    ) -> None:
        #: How many jobs may wait behind retries before they are given back.
        self.cap = cap
        self.grace = grace
        #: When a message its handler left unsettled comes back (the visibility timeout).
        self.not_acked_delay = not_acked_delay
        #: The engine holds a key's later messages itself while one is out (SQS FIFO).
        self.locks_keys = locks_keys
        self._keys: dict[str, _Key] = {}
        #: Jobs fetched and waiting for their key (no thread yet).
        self.held = 0

    @classmethod
    def for_worker(
        cls, queue: Queue, options: WorkerOptions, *, locks_keys: bool
    ) -> KeyOrder | None:
        """The bookkeeping of a worker of ``queue``, or None when per-key order is off (the
        worker's option, else the queue's ``ordered_by_key``)."""
        on = options.ordered_by_key
        if not (queue.orders_by_key() if on is None else on):
            return None
        cap = options.max_held_back or options.concurrency
        return cls(
            cap,
            options.key_retry_grace,
            locks_keys=locks_keys,
            not_acked_delay=float(queue.visibility_timeout),
        )

    def tick(
        self, now: float, run: Callable[[Job], None], give_back: Callable[[Job], None]
    ) -> float | None:
        """Consumer thread, every loop: ``run`` the jobs whose key's wait is over,
        ``give_back`` what waits beyond the cap; the seconds until the next wait ends."""
        for job in self.due(now):
            run(job)
        for job in self.overflow():
            give_back(job)
        return self.next_due(now)

    def admit(self, job: Job, now: float) -> bool:
        """True: ``job`` runs now. False: it waits for its key (``settled`` or ``due`` give it
        back when its turn comes)."""
        key = job.delivery.ordering_key
        if not key:
            return True
        state = self._keys.get(key)
        if state is None:
            self._keys[key] = _Key(running=job)
            return True
        if state.retried == job.message_id:  # the retry came back: it goes first
            state.retried = None
            if state.running is None:
                state.running = job
                return True
            state.waiting.appendleft(job)
        else:
            state.waiting.append(job)
        self.held += 1
        return False

    def settled(self, job: Job, now: float) -> list[Job]:
        """``job`` left the worker's in-flight map (settled, or given back): the jobs that may
        run now (at most one, of the same key)."""
        key = job.delivery.ordering_key
        state = self._keys.get(key) if key else None
        if state is None:
            return []
        if state.running is not job:
            try:
                state.waiting.remove(job)  # given back while it waited
            except ValueError:
                return []
            self.held -= 1
            return self._next(key, state, now)  # type: ignore[arg-type]
        state.running = None
        outcome = job.outcome
        if outcome is not None and outcome.settlement in (Settlement.RETRY, Settlement.NOT_ACKED):
            delay = outcome.delay or 0.0
            if outcome.settlement == Settlement.NOT_ACKED:
                delay = self.not_acked_delay  # after its lease, or sent to retry that late
            state.retried = job.message_id
            state.until = now + delay + self.grace
        return self._next(key, state, now)  # type: ignore[arg-type]

    def due(self, now: float) -> list[Job]:
        """The jobs whose key's wait for a retried message is over (it went elsewhere)."""
        ready: list[Job] = []
        for key, state in list(self._keys.items()):
            if state.retried is not None and now >= state.until:
                state.retried = None
                ready.extend(self._next(key, state, now))
        return ready

    def next_due(self, now: float) -> float | None:
        """Seconds until a key's wait ends (None: no key waits with followers)."""
        times = [s.until for s in self._keys.values() if s.retried is not None and s.waiting]
        return max(0.0, min(times) - now) if times else None

    def overflow(self) -> list[Job]:
        """Followers to give back to the engine: on an engine that locks keys, every follower
        of a key waiting for a retry; elsewhere all of them once more than ``cap`` wait. Whole
        tails, so what stays and what comes back keep their order."""
        waiting = [s for s in self._keys.values() if s.retried is not None and s.waiting]
        if not self.locks_keys and sum(len(s.waiting) for s in waiting) <= self.cap:
            return []
        released: list[Job] = []
        for state in waiting:
            released.extend(state.waiting)
        return released

    def _next(self, key: str, state: _Key, now: float) -> list[Job]:
        if state.running is not None:
            return []
        if state.retried is not None and now < state.until:
            return []  # later messages of the key wait for the retried one (``due``)
        if not state.waiting:
            del self._keys[key]
            return []
        job = state.waiting.popleft()
        self.held -= 1
        state.running = job
        state.retried = None
        return [job]
