"""Batch handlers (``@handler(name, batch=N, max_wait=s)``) against every real engine, in-process
workers: batch sizes, per-message settlement, a raising handler, ``max_wait``, mixed queues and
shutdown. What the engine holds afterwards is read with its own client."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from queues.backends import get_backend
from queues.models import Queue
from tests.queues.backends.engines import Engine, KafkaEngine
from tests.workers.helpers import FAST, events, holds_for, publish, wait_for, wait_for_events
from workers.context import BatchContext, BatchMessage, Context
from workers.models import EventKind
from workers.options import WorkerOptions
from workers.registry import Registry
from workers.runtime import Worker

StartWorker = Callable[..., Worker]
MakeQueue = Callable[..., Queue]


@dataclass
class Seen:
    message_id: str
    attempt: int
    body: dict[str, Any]


@dataclass
class Batches:
    """Each call of a batch handler, as it happens; waits without sleeping."""

    calls: list[tuple[float, list[Seen]]] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def record(self, messages: list[BatchMessage]) -> None:
        seen = [Seen(m.message_id, m.attempt, m.body) for m in messages]
        with self._changed:
            self.calls.append((time.monotonic(), seen))
            self._changed.notify_all()

    @property
    def messages(self) -> list[Seen]:
        return [seen for _, batch in self.calls for seen in batch]

    def wait_messages(self, count: int, timeout: float = 30.0) -> list[Seen]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    pytest.fail(f"timed out waiting for {count} messages; got {self.calls}")
                self._changed.wait(remaining)
            return self.messages


def nothing_left(engine: Engine, queue: Queue) -> None:
    wait_for(
        lambda: engine.unacknowledged(queue, get_backend(queue)) == 0,
        15,
        "the engine to hold no message",
    )


def test_messages_come_in_batches_no_larger_than_the_size_and_each_ack_removes_one(
    engine: Engine, make_queue: MakeQueue, registry: Registry, start_worker: StartWorker
) -> None:
    queue = make_queue(visibility_timeout=10)
    batches = Batches()

    @registry.handler("bulk", batch=10, max_wait=0.5)
    def bulk(messages: list[BatchMessage], ctx: BatchContext) -> None:
        batches.record(messages)
        assert ctx.messages == messages
        ctx.ack_all()

    ids = publish(queue, *[{"handler": "bulk", "n": n} for n in range(25)], keyed=True)
    worker = start_worker(queue, concurrency=2)

    seen = batches.wait_messages(25)
    complete = wait_for_events(queue, 25, kind=EventKind.COMPLETE)
    worker.stop()

    sizes = [len(batch) for _, batch in batches.calls]
    assert all(1 <= size <= 10 for size in sizes), sizes
    assert max(sizes) > 1, f"never more than one message per call: {sizes}"
    assert sorted(s.message_id for s in seen) == sorted(ids), "each message exactly once"
    assert {s.body["handler"] for s in seen} == {"bulk"}
    assert {e.message_id for e in complete} == set(ids)
    assert len(events(queue, kind=EventKind.STARTED)) == 25, "a started line per message"
    nothing_left(engine, queue)


def test_each_message_of_a_batch_is_settled_on_its_own(
    engine: Engine, make_queue: MakeQueue, registry: Registry, start_worker: StartWorker
) -> None:
    queue = make_queue(max_attempts=2, visibility_timeout=1)
    batches = Batches()

    @registry.handler("mixed_fates", batch=20, max_wait=0.3)
    def handle(messages: list[BatchMessage], ctx: BatchContext) -> None:
        batches.record(messages)
        for message in messages:
            fate = message["fate"]
            if fate == "ack" or message.attempt > 1:
                message.ack()
            elif fate == "retry":
                message.retry(0.2)
            elif fate == "dead":
                message.dead_letter(f"bad order {message['n']}")
            # "leave": not settled; delivered again like a single handler's message

    fates = ["ack", "retry", "dead", "leave", "ack", "dead"]
    ids = publish(
        queue, *[{"handler": "mixed_fates", "fate": f, "n": n} for n, f in enumerate(fates)]
    )
    by_fate = dict(zip(ids, fates, strict=True))
    worker = start_worker(queue)

    seen = batches.wait_messages(len(ids) + 2)  # retry and leave come back once
    wait_for_events(queue, 4, kind=EventKind.COMPLETE)
    dead_events = wait_for_events(queue, 2, kind=EventKind.DEAD_LETTERED)
    worker.stop()

    attempts: dict[str, list[int]] = {}
    for s in seen:
        attempts.setdefault(by_fate[s.message_id] + s.message_id, []).append(s.attempt)
    for message_id, fate in by_fate.items():
        expected = [1, 2] if fate in ("retry", "leave") else [1]
        assert attempts[fate + message_id] == expected, fate
    (retried,) = events(queue, kind=EventKind.RETRIED)
    assert by_fate[retried.message_id] == "retry"
    assert {by_fate[e.message_id] for e in dead_events} == {"dead"}
    dead = engine.read_dead_letters(queue, 2)
    assert {d.message_id for d in dead} == {i for i, f in by_fate.items() if f == "dead"}
    assert {d.reason for d in dead} == {"bad order 2", "bad order 5"}
    complete = events(queue, kind=EventKind.COMPLETE)
    assert {by_fate[e.message_id] for e in complete} == {"ack", "retry", "leave"}
    nothing_left(engine, queue)


def test_a_raising_batch_handler_retries_every_message_then_dead_letters_them(
    engine: Engine, make_queue: MakeQueue, registry: Registry, start_worker: StartWorker
) -> None:
    queue = make_queue(max_attempts=2)
    batches = Batches()

    @registry.handler("downstream_down", batch=10, max_wait=0.3)
    def handle(messages: list[BatchMessage], ctx: BatchContext) -> None:
        batches.record(messages)
        raise ConnectionError("the CRM is down")

    ids = publish(queue, *[{"handler": "downstream_down", "n": n} for n in range(4)])
    worker = start_worker(queue, retry_base_delay=0.2)

    seen = batches.wait_messages(8)
    wait_for_events(queue, 4, kind=EventKind.DEAD_LETTERED)
    worker.stop()

    for message_id in ids:
        assert sorted(s.attempt for s in seen if s.message_id == message_id) == [1, 2]
    assert {e.message_id for e in events(queue, kind=EventKind.RETRIED)} == set(ids)
    assert len(events(queue, kind=EventKind.FAILED)) == 8, "a failed line per message and try"
    dead = engine.read_dead_letters(queue, 4)
    assert {d.message_id for d in dead} == set(ids)
    for letter in dead:
        assert letter.reason is not None
        assert "ConnectionError: the CRM is down" in letter.reason
        assert "attempt 2 of 2" in letter.reason
    assert not events(queue, kind=EventKind.COMPLETE)


def test_max_wait_runs_a_partial_batch(
    engine: Engine, make_queue: MakeQueue, registry: Registry, start_worker: StartWorker
) -> None:
    queue = make_queue(visibility_timeout=10)
    batches = Batches()

    @registry.handler("slow_trickle", batch=100, max_wait=0.6)
    def handle(messages: list[BatchMessage], ctx: BatchContext) -> None:
        batches.record(messages)
        ctx.ack_all()

    ids = publish(queue, *[{"handler": "slow_trickle", "n": n} for n in range(3)])
    started = time.monotonic()
    worker = start_worker(queue)

    seen = batches.wait_messages(3, timeout=20)
    wait_for_events(queue, 3, kind=EventKind.COMPLETE)
    worker.stop()

    assert sorted(s.message_id for s in seen) == sorted(ids)
    first_call = batches.calls[0][0]
    assert first_call - started >= 0.6, "ran before max_wait though the batch was not full"
    assert all(len(batch) < 100 for _, batch in batches.calls)
    nothing_left(engine, queue)


def test_a_mixed_queue_serves_single_and_batch_handlers(
    engine: Engine, make_queue: MakeQueue, registry: Registry, start_worker: StartWorker
) -> None:
    queue = make_queue(visibility_timeout=10)
    batches = Batches()
    singles: list[str] = []

    @registry.handler("many", batch=5, max_wait=0.3)
    def many(messages: list[BatchMessage], ctx: BatchContext) -> None:
        batches.record(messages)
        ctx.ack_all()

    @registry.handler("one")
    def one(message: dict[str, Any], ctx: Context) -> None:
        assert isinstance(message, dict)
        singles.append(ctx.message_id)
        ctx.ack()

    bodies = [{"handler": "many" if n % 3 else "one", "n": n} for n in range(15)]
    ids = publish(queue, *bodies, keyed=True)
    worker = start_worker(queue, concurrency=3)

    batches.wait_messages(10)
    wait_for_events(queue, 15, kind=EventKind.COMPLETE)
    worker.stop()

    batched_ids = {s.message_id for s in batches.messages}
    assert batched_ids == {i for i, b in zip(ids, bodies, strict=True) if b["handler"] == "many"}
    assert set(singles) == {i for i, b in zip(ids, bodies, strict=True) if b["handler"] == "one"}
    assert all(len(batch) <= 5 for _, batch in batches.calls)
    nothing_left(engine, queue)


def test_shutdown_gives_back_a_batch_still_gathering(
    engine: Engine, make_queue: MakeQueue, registry: Registry, start_worker: StartWorker
) -> None:
    queue = make_queue(visibility_timeout=2)
    batches = Batches()

    @registry.handler("patient", batch=50, max_wait=30)
    def handle(messages: list[BatchMessage], ctx: BatchContext) -> None:
        batches.record(messages)
        ctx.ack_all()

    publish(queue, *[{"handler": "patient", "n": n} for n in range(3)])
    worker = start_worker(queue)
    wait_for(lambda: len(worker.in_flight) == 3, 20, "three messages gathered")
    worker.stop()

    assert not batches.calls, "a gathering batch does not run at shutdown"
    released = events(queue, kind=EventKind.LOG)
    assert sum("Given back at shutdown" in e.detail for e in released) == 3
    # The engine has them again: a second worker, with a short max_wait, runs them.
    again = Registry()

    @again.handler("patient", batch=50, max_wait=0.2)
    def handle_again(messages: list[BatchMessage], ctx: BatchContext) -> None:
        batches.record(messages)
        ctx.ack_all()

    second = Worker(queue, registry=again, options=WorkerOptions(**FAST))
    second.start()
    try:
        assert {s.attempt for s in batches.wait_messages(3, timeout=30)} <= {1, 2}
    finally:
        second.stop(drain_seconds=5)
    nothing_left(engine, queue)


@pytest.mark.parametrize("engine", [pytest.param("kafka", marks=pytest.mark.e2e)], indirect=True)
def test_kafka_never_commits_past_a_message_still_gathered_in_a_batch(
    engine: KafkaEngine, make_queue: MakeQueue, registry: Registry, start_worker: StartWorker
) -> None:
    queue = make_queue(partitions=1)
    batches = Batches()

    @registry.handler("gathered", batch=10, max_wait=30)
    def gathered(messages: list[BatchMessage], ctx: BatchContext) -> None:
        batches.record(messages)
        ctx.ack_all()

    @registry.handler("quick")
    def quick(message: dict[str, Any], ctx: Context) -> None:
        ctx.ack()

    # Offset 0 waits in a batch (max_wait 30 s); offsets 1 and 2 are acknowledged at once.
    bodies = [{"handler": "gathered", "n": 0}, {"handler": "quick", "n": 1}]
    publish(queue, *bodies, {"handler": "quick", "n": 2})
    worker = start_worker(queue)
    wait_for_events(queue, 2, kind=EventKind.COMPLETE)
    assert engine.committed(queue, 0) < 1, "committed past offset 0, still gathered"

    # Nine more fill the batch: it runs, and the commit moves past all twelve.
    publish(queue, *[{"handler": "gathered", "n": n} for n in range(10, 19)])
    batches.wait_messages(10)
    wait_for(lambda: engine.committed(queue, 0) == 12, 15, "the commit to reach offset 12")
    worker.stop()
    assert [len(batch) for _, batch in batches.calls] == [10]


def test_batch_handlers_elsewhere_do_not_make_a_single_handler_queue_fetch_more(
    engine: Engine, make_queue: MakeQueue, registry: Registry, start_worker: StartWorker
) -> None:
    queue = make_queue(visibility_timeout=10)
    release = threading.Event()
    started: list[str] = []

    @registry.handler("for_another_queue", batch=100)
    def bulk(messages: list[BatchMessage], ctx: BatchContext) -> None:  # pragma: no cover
        ctx.ack_all()

    @registry.handler("held")
    def held(message: dict[str, Any], ctx: Context) -> None:
        started.append(ctx.message_id)
        release.wait(20)
        ctx.ack()

    publish(queue, *[{"handler": "held", "n": n} for n in range(6)])
    worker = start_worker(queue, concurrency=2)
    try:
        wait_for(lambda: len(started) == 2, 20, "two handlers running")
        holds_for(lambda: len(worker.in_flight) == 2, 0.5, "no more fetched than the threads")
    finally:
        release.set()
    wait_for_events(queue, 6, kind=EventKind.COMPLETE)
    worker.stop()
