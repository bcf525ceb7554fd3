"""Per-key order inside one worker (``workers.ordering``): one key's messages run one at a time
in arrival order, different keys in parallel, and a key whose message retries holds back only
that key's later messages — on every engine (SQS: a FIFO queue, whose group is the key).

``QUAYMASTER_KEY_ORDER_UPDATES`` sets how many updates the engine test publishes (200 by
default, to stay within the suite's time; ``make bench``-style runs use 1000)."""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import REGISTRY

from queues.backends import get_backend
from queues.messages import Delivery, KafkaPublishResult, OutgoingMessage
from queues.models import Queue, QueueType
from tests.queues.backends.engines import Engine, KafkaEngine, unique_name
from tests.queues.helpers import wait_for
from workers.context import Context
from workers.errors import Retry
from workers.job import Job, Outcome, Settlement
from workers.models import WorkerProcess
from workers.ordering import KeyOrder
from workers.registry import Registry
from workers.runtime import Worker

StartWorker = Callable[..., Worker]
RECORDS = 10
HELD_BACK = "quaymaster_worker_held_back"
UPDATES = int(os.environ.get("QUAYMASTER_KEY_ORDER_UPDATES", "200"))


# -- the bookkeeping alone ---------------------------------------------------------------------


def job(seq: int, key: str | None, message_id: str | None = None) -> Job:
    delivery = Delivery(message_id or str(uuid.uuid4()), b"{}", 1, {}, None, key)
    return Job(seq, delivery, 0.0)


def settle(order: KeyOrder, done: Job, outcome: Outcome, now: float = 0.0) -> list[Job]:
    done.outcome = outcome
    return order.settled(done, now)


def test_one_key_runs_one_at_a_time_in_arrival_order_and_other_keys_run_at_once() -> None:
    order = KeyOrder(cap=10, grace=5.0)
    a1, a2, a3, b1, free = job(1, "a"), job(2, "a"), job(3, "a"), job(4, "b"), job(5, None)
    assert [order.admit(j, 0.0) for j in (a1, a2, a3, b1, free)] == [[a1], [], [], [b1], [free]]
    assert order.held == 2
    assert settle(order, a1, Outcome.ack()) == [a2]
    assert settle(order, b1, Outcome.ack()) == []
    assert settle(order, a2, Outcome.dead_letter("bad")) == [a3], "a dead letter frees the key"
    assert settle(order, a3, Outcome.ack()) == []
    assert order.held == 0


def test_a_retrying_key_holds_its_later_messages_until_the_retry_settles() -> None:
    order = KeyOrder(cap=10, grace=5.0)
    a1, a2 = job(1, "a"), job(2, "a")
    assert order.admit(a1, 0.0) == [a1]
    assert order.admit(a2, 0.0) == []
    assert settle(order, a1, Outcome.retry(3.0), now=1.0) == [], "a2 waits for the retry"
    a3 = job(3, "a")
    assert order.admit(a3, 1.5) == [], "a message arriving meanwhile waits too"
    assert order.next_due(1.0) == pytest.approx(8.0)  # 1 + 3 + grace 5, from now=1
    back = job(4, "a", a1.message_id)  # the retried message, delivered again
    assert order.admit(back, 4.0) == [back], "the retry runs first"
    assert settle(order, back, Outcome.ack(), now=4.5) == [a2]
    assert settle(order, a2, Outcome.ack()) == [a3]


def test_a_retry_that_went_elsewhere_lets_the_key_go_on_after_the_grace() -> None:
    order = KeyOrder(cap=10, grace=2.0)
    a1, a2 = job(1, "a"), job(2, "a")
    order.admit(a1, 0.0)
    order.admit(a2, 0.0)
    settle(order, a1, Outcome.retry(1.0))
    assert order.due(2.9) == []
    assert order.due(3.0) == [a2]


def test_a_message_left_unsettled_holds_its_key_until_it_is_delivered_again() -> None:
    order = KeyOrder(cap=10, grace=2.0, not_acked_delay=30.0)
    a1, a2 = job(1, "a"), job(2, "a")
    order.admit(a1, 0.0)
    order.admit(a2, 0.0)
    assert settle(order, a1, Outcome(Settlement.NOT_ACKED)) == []
    assert order.due(31.9) == []
    assert order.due(32.0) == [a2]


def test_beyond_the_cap_the_followers_of_retrying_keys_are_given_back_whole() -> None:
    order = KeyOrder(cap=2, grace=60.0)
    a = [job(i, "a") for i in range(4)]
    for one in a:
        order.admit(one, 0.0)
    assert order.overflow(0.0) == [], "waiting behind a running message is bounded by the fetch"
    settle(order, a[0], Outcome.retry(30.0))
    released = order.overflow(10.0)
    assert released == [(one, 21.0) for one in a[1:]], "behind the retried message"
    assert order.held == 0
    for one, _ in released:
        assert order.settled(one, 10.0) == []
    later = job(9, "a")
    assert order.admit(later, 12.0) == [], "it would overtake those given back"
    assert order.overflow(12.0) == [(later, 19.0)], "given back to come behind them"
    back = job(10, "a", a[0].message_id)
    assert order.admit(back, 30.5) == [back]
    assert order.settled(back, 31.0) == []
    returned = [job(11 + i, "a", one.message_id) for i, (one, _) in enumerate(released)]
    assert order.admit(returned[0], 31.5) == [returned[0]]
    assert order.admit(returned[1], 31.5) == []
    assert order.admit(job(20, "a", later.message_id), 31.6) == []
    assert order.settled(returned[0], 32.0) == [returned[1]]


def test_an_engine_that_locks_keys_gets_the_followers_back_at_once() -> None:
    order = KeyOrder(cap=100, grace=60.0, locks_keys=True)
    a1, a2 = job(1, "a"), job(2, "a")
    order.admit(a1, 0.0)
    order.admit(a2, 0.0)
    assert order.overflow(0.0) == []
    settle(order, a1, Outcome.retry(5.0))
    assert order.overflow(0.0) == [(a2, 0.0)]


def test_on_the_database_followers_beyond_the_cap_come_back_behind_the_retry(
    engine_database: None, registry: Registry, start_worker: StartWorker
) -> None:
    """More followers than the cap wait behind a retry: they are given back to the engine
    until the retried message is due, and come back behind it (not in a loop: one more
    delivery each)."""
    queue = Queue.objects.create(name=unique_name("database"), ordered_by_key=True)
    timeline = Timeline()
    done = threading.Semaphore(0)

    @registry.handler("apply")
    def apply(message: dict[str, Any], ctx: Context) -> None:
        if message["version"] == 1 and ctx.attempt == 1:
            raise Retry(0.5)
        timeline.runs.append((message["record"], message["version"], ctx.attempt, 0.0))
        ctx.ack()
        done.release()

    publish_updates(queue, 8, records=1)
    start_worker(queue, concurrency=4, max_held_back=2)
    for _ in range(8):
        assert done.acquire(timeout=30), f"only {timeline.runs} handled"
    assert [version for _, version, _, _ in timeline.runs] == list(range(1, 9))
    assert max(attempt for _, _, attempt, _ in timeline.runs) == 2


# -- on the engines ----------------------------------------------------------------------------


@dataclass
class Timeline:
    """Handler runs as they happen: (record, version, start, end), and the most at once."""

    runs: list[tuple[int, int, float, float]] = field(default_factory=list)
    running: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    overlap_same_record: int = 0
    most_at_once: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def enter(self, record: int) -> float:
        with self._lock:
            self.running[record] += 1
            if self.running[record] > 1:
                self.overlap_same_record += 1
            self.most_at_once = max(self.most_at_once, sum(self.running.values()))
        return time.monotonic()

    def leave(self, record: int, version: int, started: float) -> None:
        with self._lock:
            self.running[record] -= 1
            self.runs.append((record, version, started, time.monotonic()))

    def versions(self) -> dict[int, list[int]]:
        by_record: dict[int, list[int]] = defaultdict(list)
        with self._lock:
            for record, version, _, _ in sorted(self.runs, key=lambda run: run[3]):
                by_record[record].append(version)
        return by_record


def ordered_queue(engine: Engine, **options: Any) -> Queue:
    """A provisioned queue with per-key order on; on SQS a FIFO queue (a standard queue
    promises no order, see ``SqsBackend.clean_queue``)."""
    options.setdefault("visibility_timeout", 30)
    if engine.type == QueueType.SQS:
        queue = Queue(
            name=unique_name("sqs") + ".fifo",
            type=engine.type,
            url=engine.url(),
            fifo=True,
            ordered_by_key=True,
            **options,
        )
        queue.full_clean()
        queue.save()
        engine.created.append(queue)
    else:
        queue = engine.make_queue(ordered_by_key=True, **options)
    with get_backend(queue) as backend:
        backend.provision()
    return queue


def publish_updates(queue: Queue, updates: int, records: int = RECORDS) -> None:
    """``updates`` record events, ``updates / records`` of each record in version order, the
    records interleaved at random (so neighbours are often of one record), keyed as the outbox
    keys them (``table:record id``)."""
    order = [n % records for n in range(updates)]
    random.Random(18).shuffle(order)
    versions: dict[int, int] = defaultdict(int)
    messages = []
    for record in order:
        versions[record] += 1
        messages.append(
            OutgoingMessage.new(
                {"handler": "apply", "record": record, "version": versions[record]},
                ordering_key=f"orders:{record}",
            )
        )
    with get_backend(queue) as backend:
        for start in range(0, len(messages), 100):
            backend.publish(messages[start : start + 100])


def test_updates_of_a_record_are_handled_in_version_order_while_records_run_in_parallel(
    engine: Engine, registry: Registry, start_worker: StartWorker
) -> None:
    queue = ordered_queue(engine)
    timeline = Timeline()
    handled = threading.Semaphore(0)

    @registry.handler("apply")
    def apply(message: dict[str, Any], ctx: Context) -> None:
        started = timeline.enter(message["record"])
        time.sleep(0.002)  # the handler's work (a write to a downstream system, say)
        timeline.leave(message["record"], message["version"], started)
        ctx.ack()
        handled.release()

    publish_updates(queue, UPDATES)
    started = time.monotonic()
    start_worker(queue, concurrency=10)
    for _ in range(UPDATES):
        assert handled.acquire(timeout=60), f"only {len(timeline.runs)} of {UPDATES} handled"
    elapsed = time.monotonic() - started

    versions = timeline.versions()
    per_record = UPDATES // RECORDS
    assert all(versions[r] == list(range(1, per_record + 1)) for r in range(RECORDS)), versions
    assert timeline.overlap_same_record == 0, "two updates of one record ran at once"
    assert timeline.most_at_once >= 3, f"records did not run in parallel ({timeline.most_at_once})"
    print(f"{engine.type}: {UPDATES} updates in {elapsed:.2f}s, at most {timeline.most_at_once}")


def test_a_failing_key_holds_back_only_its_own_later_messages(
    engine: Engine, registry: Registry, start_worker: StartWorker
) -> None:
    """Record 0's first update fails until every other record's updates are handled: they are
    (so the failing key blocked no other), record 0's later updates wait for it (held back,
    on the workers page's figure), and record 0 ends in version order."""
    queue = ordered_queue(engine, max_attempts=100)
    timeline = Timeline()
    others = (RECORDS - 1) * 3
    others_done, release = threading.Event(), threading.Event()
    done = threading.Semaphore(0)

    @registry.handler("apply")
    def apply(message: dict[str, Any], ctx: Context) -> None:
        record, version = message["record"], message["version"]
        if record == 0 and version == 1 and not release.is_set():
            raise Retry(0.2)
        started = timeline.enter(record)
        timeline.leave(record, version, started)
        ctx.ack()
        if record and sum(1 for run in timeline.runs if run[0]) == others:
            others_done.set()
        done.release()

    publish_updates(queue, RECORDS * 3)
    worker = start_worker(queue, concurrency=10)
    assert others_done.wait(60), "a failing key blocked the others"
    if engine.type != QueueType.SQS:  # SQS FIFO gives the followers back to the group
        wait_for(
            lambda: WorkerProcess.objects.filter(pk=worker.process_id, held_back__gt=0).exists(),
            10,
            "the held-back count on the worker's row",
        )
        wait_for(
            lambda: REGISTRY.get_sample_value(HELD_BACK, {"queue": queue.name}),
            10,
            "quaymaster_worker_held_back",
        )
    release.set()
    for _ in range(RECORDS * 3):
        assert done.acquire(timeout=60), f"only {len(timeline.runs)} handled"
    assert timeline.versions()[0] == [1, 2, 3]
    wait_for(lambda: worker.order is not None and worker.order.held == 0, 10, "none held back")
    wait_for(
        lambda: REGISTRY.get_sample_value(HELD_BACK, {"queue": queue.name}) == 0,
        10,
        "quaymaster_worker_held_back back to 0",
    )


@pytest.mark.e2e
def test_on_kafka_a_held_back_key_keeps_the_commit_below_its_next_message(
    engine_database: None, registry: Registry, start_worker: StartWorker
) -> None:
    """Holding a key back never commits past its held message: what a crash or a restart
    replays starts at it (read back with Kafka's own client)."""
    kafka = KafkaEngine()
    try:
        queue = kafka.make_queue(partitions=1, ordered_by_key=True, max_attempts=10)
        with get_backend(queue) as backend:
            backend.provision()
            results = backend.publish(
                [
                    OutgoingMessage.new(
                        {"handler": "apply", "record": n % 3, "version": n // 3 + 1},
                        ordering_key=f"orders:{n % 3}",
                    )
                    for n in range(9)
                ]
            )
        handled = threading.Semaphore(0)

        @registry.handler("apply")
        def apply(message: dict[str, Any], ctx: Context) -> None:
            if message["record"] == 0:
                raise Retry(60)  # record 0 waits for its retry for the rest of the test
            ctx.ack()
            handled.release()

        worker = start_worker(queue, concurrency=4)
        for _ in range(6):
            assert handled.acquire(timeout=30), "records 1 and 2 were blocked"
        wait_for(lambda: worker.order is not None and worker.order.held == 2, 10, "2 held")
        worker.stop(drain_seconds=0)
        second_of_record_0 = results[3]
        assert isinstance(second_of_record_0, KafkaPublishResult)
        assert kafka.committed(queue, 0) == second_of_record_0.offset
    finally:
        kafka.cleanup()
