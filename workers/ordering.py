"""Per-key order inside one worker: messages with one ordering key (a record event's
``table:record id``) run one at a time, in the order they arrived; different keys run in
parallel up to the concurrency; messages without a key run freely.

``KeyOrder`` is pure bookkeeping for the consumer thread (no locks, no engine): the worker
hands ``admit`` each fetched job and tells ``settled`` each job that left the in-flight map;
both answer the jobs that may run now. ``tick`` (every consumer loop) ends waits that are over
and names what to give back to the engine.

A key whose message is retried holds back only that key's later messages:

* on engines that lock a key while any of its messages is out (an SQS FIFO group:
  ``Backend.locks_keys``) the held followers are given straight back; the engine delivers them
  again after the retried one;
* elsewhere (database, Kafka's ``.retry`` topic, RabbitMQ's ``.retry`` queue) a retry goes
  back to the engine while later messages of the key may arrive at once, so the key waits in
  the worker, its followers fetched but not run (their leases extended, Kafka's commit held
  below them), until the retried message comes back (it runs first) and settles. It may come
  back to another worker process: the wait ends ``grace`` seconds after the retry was due, and
  the followers run.

Bounds: held-back jobs count against the worker's in flight (``cap`` more than the threads,
see ``Worker._loop``), so fetching never runs away; when more than ``cap`` wait behind retries,
the waiting keys' followers are given back to the engine as retries due just after their
retried message (``overflow``; a delivery counted each), and until they are back a later
message of the key is given back behind them rather than run before them.
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


#: Followers given back come back this long after their retried message is due (behind it,
#: where the engine orders by time: the database's ``available_at``).
BEHIND = 1.0


@dataclass
class _Key:
    running: Job | None = None
    waiting: deque[Job] = field(default_factory=deque)
    #: The retried message the key waits for, and until when (``time.monotonic()``).
    retried: str | None = None
    until: float = 0.0
    #: Messages given back to the engine that must run before any later one: they are due
    #: at ``back_at`` and expected until ``back_until`` (then they went elsewhere).
    returning: set[str] = field(default_factory=set)
    back_at: float = 0.0
    back_until: float = 0.0

    def expects(self, now: float) -> bool:
        return bool(self.returning) and now < self.back_until


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
        #: Later messages of a key whose given-back messages are not back yet: given back too.
        self._refused: list[Job] = []
        #: Jobs fetched and waiting for their key, or to be given back (no thread).
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
        self, now: float, run: Callable[[Job], None], give_back: Callable[[Job, float], None]
    ) -> float | None:
        """Consumer thread, every loop: ``run`` the jobs whose key's wait is over,
        ``give_back(job, delay)`` what waits beyond the cap; the seconds until the next wait
        ends."""
        for job in self.due(now):
            run(job)
        for job, delay in self.overflow(now):
            give_back(job, delay)
        return self.next_due(now)

    def admit(self, job: Job, now: float) -> list[Job]:
        """``job`` was fetched: the jobs that run now (``job`` itself, or none: it waits for
        its key, and ``settled`` or ``due`` give it when its turn comes, or ``overflow`` gives
        it back to the engine)."""
        key = job.delivery.ordering_key
        if not key:
            return [job]
        state = self._keys.get(key)
        if state is None:
            self._keys[key] = _Key(running=job)
            return [job]
        self.held += 1
        if job.message_id == state.retried:  # the retry came back: it goes first
            state.retried = None
            state.waiting.appendleft(job)
        elif state.expects(now) and job.message_id not in state.returning:
            self._refused.append(job)  # it would overtake messages given back before it
            return []
        else:
            state.returning.discard(job.message_id)
            state.waiting.append(job)
        return self._next(key, state, now)

    def settled(self, job: Job, now: float) -> list[Job]:
        """``job`` left the worker's in-flight map (settled, or given back): the jobs that may
        run now (at most one, of the same key)."""
        key = job.delivery.ordering_key
        state = self._keys.get(key) if key else None
        if state is None or key is None:
            return []
        if state.running is not job:
            if job in self._refused:
                self._refused.remove(job)
            elif job in state.waiting:
                state.waiting.remove(job)  # given back at shutdown while it waited
            else:
                return []
            self.held -= 1
            return self._next(key, state, now)
        state.running = None
        outcome = job.outcome
        if outcome is not None and outcome.settlement in (Settlement.RETRY, Settlement.NOT_ACKED):
            delay = outcome.delay or 0.0
            if outcome.settlement == Settlement.NOT_ACKED:
                delay = self.not_acked_delay  # after its lease, or sent to retry that late
            state.retried = job.message_id
            state.until = now + delay + self.grace
        return self._next(key, state, now)

    def due(self, now: float) -> list[Job]:
        """The jobs whose key's wait for a retried message is over (it went elsewhere)."""
        ready: list[Job] = []
        for key, state in list(self._keys.items()):
            if state.retried is not None and now >= state.until:
                state.retried = None
                ready.extend(self._next(key, state, now))
            elif state.returning and now >= state.back_until:
                state.returning.clear()
                ready.extend(self._next(key, state, now))
        return ready

    def next_due(self, now: float) -> float | None:
        """Seconds until a key's wait ends (None: no key waits with followers)."""
        times = [s.until for s in self._keys.values() if s.retried is not None and s.waiting]
        return max(0.0, min(times) - now) if times else None

    def overflow(self, now: float) -> list[tuple[Job, float]]:
        """Messages to give back to the engine, each with the delay to give it back for, in
        order: those that would overtake messages given back earlier; on an engine that locks
        keys, every follower of a key waiting for a retry, at once (the engine keeps them
        behind it); elsewhere all of them once more than ``cap`` wait, until their retried
        message is due (so they come back behind it, not in a loop). Whole tails, so what
        stays and what comes back keep their order."""
        released: list[tuple[Job, float]] = []
        for job in self._refused:
            state = self._keys[job.delivery.ordering_key]  # type: ignore[index]
            released.append((job, 0.0 if self.locks_keys else max(0.0, state.back_at - now)))
        self.held -= len(self._refused)
        self._refused = []
        waiting = [s for s in self._keys.values() if s.retried is not None and s.waiting]
        if not self.locks_keys and sum(len(s.waiting) for s in waiting) <= self.cap:
            return released
        for state in waiting:
            # Behind the retried message when it is due; once that time is past (it went
            # elsewhere, or is late) at the wait's end, so that nothing comes back in a loop.
            due = state.until - self.grace
            back = due + BEHIND if now < due else state.until + BEHIND
            state.back_at = now if self.locks_keys else back
            state.back_until = state.back_at + self.grace
            for job in state.waiting:
                state.returning.add(job.message_id)
                released.append((job, state.back_at - now))
            self.held -= len(state.waiting)
            state.waiting.clear()
        return released

    def _next(self, key: str, state: _Key, now: float) -> list[Job]:
        if state.running is not None:
            return []
        if state.retried is not None and now < state.until:
            return []  # later messages of the key wait for the retried one (``due``)
        if not state.waiting:
            if not state.expects(now):
                del self._keys[key]
            return []
        job = state.waiting.popleft()
        self.held -= 1
        state.running = job
        state.retried = None
        return [job]
