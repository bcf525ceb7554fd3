"""The worker runtime against every real engine (in-process workers; see test_processes.py for
real ``runworker`` processes). What the engine holds afterwards is read with the engine's own
client (``tests.queues.backends.engines``), not through the worker."""

from __future__ import annotations

import itertools
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from queues.backends import get_backend
from queues.backends.base import Backend
from queues.errors import BrokerUnavailable
from queues.messages import Delivery
from queues.models import Queue, QueueType
from tests.queues.backends.engines import Engine, KafkaEngine
from tests.workers.helpers import FAST, Recorder, events, publish, wait_for, wait_for_events
from workers.context import Context
from workers.models import EventKind, Level
from workers.options import WorkerOptions
from workers.registry import Registry
from workers.runtime import Worker

StartWorker = Callable[..., Worker]
MakeQueue = Callable[..., Queue]


def nothing_left(engine: Engine, queue: Queue) -> None:
    """The engine holds no message of the queue, ready or in flight (the worker is stopped)."""
    wait_for(
        lambda: engine.unacknowledged(queue, get_backend(queue)) == 0,
        15,
        "the engine to hold no message",
    )


def test_dispatches_by_handler_name_and_an_ack_removes_the_message(
    engine: Engine, make_queue: MakeQueue, registry: Registry, start_worker: StartWorker
) -> None:
    queue = make_queue()
    alpha, beta = Recorder(), Recorder()

    @registry.handler("alpha")
    def on_alpha(message: dict[str, Any], ctx: Context) -> None:
        alpha.record(message, ctx)
        ctx.ack()

    @registry.handler("beta")
    def on_beta(message: dict[str, Any], ctx: Context) -> None:
        beta.record(message, ctx)
        ctx.ack()

    ids = publish(queue, {"handler": "alpha", "n": 1}, {"handler": "beta"}, {"handler": "alpha"})
    worker = start_worker(queue)

    alpha.wait_count(2)
    beta.wait_count(1)
    complete = wait_for_events(queue, 3, kind=EventKind.COMPLETE)
    worker.stop()

    assert {c.message_id for c in alpha.calls} == {ids[0], ids[2]}
    assert [c.message_id for c in beta.calls] == [ids[1]]
    assert {c.message["handler"] for c in alpha.calls} == {"alpha"}
    assert all(c.attempt == 1 for c in alpha.calls + beta.calls)
    assert {e.message_id for e in complete} == set(ids)
    assert {e.handler for e in complete} == {"alpha", "beta"}
    assert len(events(queue, kind=EventKind.STARTED)) == 3
    assert all(e.duration_ms is not None for e in complete)
    nothing_left(engine, queue)


def test_a_message_that_is_not_acknowledged_is_delivered_again(
    engine: Engine, make_queue: MakeQueue, registry: Registry, start_worker: StartWorker
) -> None:
    queue = make_queue(visibility_timeout=1)
    calls = Recorder()

    @registry.handler("second_time_lucky")
    def handle(message: dict[str, Any], ctx: Context) -> None:
        calls.record(message, ctx)
        if ctx.attempt >= 2:
            ctx.ack()

    (message_id,) = publish(queue, {"handler": "second_time_lucky"})
    worker = start_worker(queue)

    first, second = calls.wait_count(2)
    wait_for_events(queue, 1, kind=EventKind.COMPLETE)
    worker.stop()

    assert [first.attempt, second.attempt] == [1, 2]
    assert first.message_id == second.message_id == message_id
    # Not before the visibility timeout (database, SQS) or the retry delay (Kafka, RabbitMQ).
    assert second.at - first.at >= 0.9
    (warning,) = events(queue, kind=EventKind.LOG, level=Level.WARNING)
    assert "without acknowledging" in warning.detail
    assert warning.message_id == message_id
    nothing_left(engine, queue)


def test_an_exception_is_retried_with_growing_delays_then_dead_lettered_with_the_error(
    engine: Engine, make_queue: MakeQueue, registry: Registry, start_worker: StartWorker
) -> None:
    queue = make_queue(max_attempts=3)
    calls = Recorder()

    @registry.handler("always_fails")
    def handle(message: dict[str, Any], ctx: Context) -> None:
        calls.record(message, ctx)
        raise ValueError(f"boom on attempt {ctx.attempt}")

    (message_id,) = publish(queue, {"handler": "always_fails"})
    worker = start_worker(queue, retry_base_delay=0.3, retry_max_delay=5.0)

    made = calls.wait_count(3)
    wait_for_events(queue, 1, kind=EventKind.DEAD_LETTERED)
    worker.stop()

    assert [c.attempt for c in made] == [1, 2, 3]
    retried = events(queue, kind=EventKind.RETRIED)
    delays = [float(re.match(r"Retry in ([\d.]+)s", e.detail).group(1)) for e in retried]  # type: ignore[union-attr]
    assert len(delays) == 2
    assert 0.15 <= delays[0] <= 0.3, "attempt 1: base/2 to base"
    assert 0.3 <= delays[1] <= 0.6, "attempt 2: base to 2 * base"
    assert delays[1] >= delays[0]
    for (before, after), delay in zip(itertools.pairwise(made), delays, strict=True):
        assert after.at - before.at >= delay - 0.02, "delivered again before its delay"
    assert len(events(queue, kind=EventKind.FAILED, level=Level.ERROR)) == 3

    (dead,) = engine.read_dead_letters(queue, 1)
    assert dead.message_id == message_id
    assert dead.reason is not None
    assert "ValueError: boom on attempt 3" in dead.reason
    assert "attempt 3 of 3" in dead.reason
    assert "Traceback" in dead.reason
    (logged,) = events(queue, kind=EventKind.DEAD_LETTERED)
    assert "raise ValueError" in logged.detail, "the log keeps the whole traceback"


def test_an_unknown_handler_and_malformed_bodies_are_dead_lettered_at_once(
    engine: Engine, make_queue: MakeQueue, registry: Registry, start_worker: StartWorker
) -> None:
    queue = make_queue(max_attempts=5)
    called = threading.Event()
    registry.handler("known")(lambda message, ctx: called.set())
    bodies: list[dict[str, Any] | bytes] = [
        {"handler": "nobody_home"},
        b"[1, 2, 3]",
        {"handler": 42},
        {"no": "handler"},
    ]
    if engine.type != QueueType.DATABASE:  # database queues store JSON only
        bodies.append(b"this is not json")
    ids = publish(queue, *bodies)
    worker = start_worker(queue)

    dead_events = wait_for_events(queue, len(ids), kind=EventKind.DEAD_LETTERED)
    worker.stop()

    reasons = {e.message_id: e.detail for e in dead_events}
    assert set(reasons) == set(ids)
    assert "No handler is registered under the name 'nobody_home'" in reasons[ids[0]]
    assert "not an object (it is an array)" in reasons[ids[1]]
    assert "no string 'handler'" in reasons[ids[2]]
    assert "no string 'handler'" in reasons[ids[3]]
    if len(ids) == 5:
        assert "not JSON" in reasons[ids[4]]
    assert all(e.attempt == 1 for e in dead_events), "dead-lettered on the first delivery"
    assert not events(queue, kind=EventKind.RETRIED)
    assert not called.is_set()
    dead = engine.read_dead_letters(queue, len(ids))
    assert {d.message_id for d in dead} == set(ids)
    assert all(d.reason for d in dead)


def test_ten_handlers_run_at_the_same_time(
    engine: Engine, make_queue: MakeQueue, registry: Registry, start_worker: StartWorker
) -> None:
    queue = make_queue(visibility_timeout=5)
    barrier = threading.Barrier(10)
    calls = Recorder()
    broken: list[BaseException] = []

    @registry.handler("together")
    def handle(message: dict[str, Any], ctx: Context) -> None:
        calls.record(message, ctx)
        try:
            barrier.wait(timeout=15)  # passes only when 10 handlers wait here at once
        except threading.BrokenBarrierError as exc:
            broken.append(exc)
            raise
        ctx.ack()

    publish(queue, *[{"handler": "together", "n": n} for n in range(10)])
    worker = start_worker(queue, concurrency=10)

    wait_for_events(queue, 10, timeout=30, kind=EventKind.COMPLETE)
    worker.stop()
    assert not broken
    assert len({c.thread for c in calls.calls}) == 10


def test_never_more_fetched_than_the_concurrency(
    engine: Engine, make_queue: MakeQueue, registry: Registry, start_worker: StartWorker
) -> None:
    queue = make_queue(visibility_timeout=10)
    release = threading.Event()
    calls = Recorder()

    @registry.handler("held")
    def handle(message: dict[str, Any], ctx: Context) -> None:
        calls.record(message, ctx)
        release.wait(20)
        ctx.ack()

    publish(queue, *[{"handler": "held", "n": n} for n in range(6)])
    worker = start_worker(queue, concurrency=2)
    try:
        calls.wait_count(2)
        assert len(worker.in_flight) == 2
        with get_backend(queue) as backend:
            stats = backend.stats()
        if engine.type in (QueueType.DATABASE, QueueType.SQS):
            assert stats.in_flight == 2
            assert stats.depth == 4
        elif engine.type == QueueType.RABBITMQ:
            # basic.qos is twice the concurrency: RabbitMQ pushed 4, two of them wait in the
            # consumer's buffer (not running, given back if the worker stops).
            assert stats.depth == 2, "basic.qos: RabbitMQ pushed no more than 4"
        assert len(calls.calls) == 2
    finally:
        release.set()
    wait_for_events(queue, 6, kind=EventKind.COMPLETE)
    worker.stop()


def test_stop_gives_back_a_handler_that_does_not_finish_within_the_drain(
    engine: Engine, make_queue: MakeQueue, registry: Registry, start_worker: StartWorker
) -> None:
    queue = make_queue(visibility_timeout=30)
    calls = Recorder()
    stuck = threading.Event()

    @registry.handler("stuck_once")
    def handle(message: dict[str, Any], ctx: Context) -> None:
        calls.record(message, ctx)
        if len(calls.calls) == 1:
            stuck.wait(30)  # never finishes within the drain
            return
        ctx.ack()

    (message_id,) = publish(queue, {"handler": "stuck_once"})
    first = start_worker(queue)
    try:
        calls.wait_count(1)
        first.stop(drain_seconds=0.3)
        assert first.finished.is_set()
        (given_back,) = events(queue, message_id=message_id, kind=EventKind.LOG)
        assert "Given back at shutdown" in given_back.detail

        # Much sooner than the 30 s visibility timeout: given back, not left to expire.
        start_worker(queue)
        calls.wait_count(2, timeout=20)
        wait_for_events(queue, 1, kind=EventKind.COMPLETE)
    finally:
        stuck.set()
    assert calls.calls[1].message_id == message_id


@pytest.mark.parametrize("engine", [pytest.param("kafka", marks=pytest.mark.e2e)], indirect=True)
def test_kafka_out_of_order_completion_never_commits_past_an_unacknowledged_offset(
    engine: KafkaEngine, make_queue: MakeQueue, registry: Registry, start_worker: StartWorker
) -> None:
    queue = make_queue(partitions=1)
    hold_first = threading.Event()
    calls = Recorder()

    @registry.handler("ordered")
    def handle(message: dict[str, Any], ctx: Context) -> None:
        calls.record(message, ctx)
        if message["n"] == 0:
            hold_first.wait(20)
        ctx.ack()

    publish(queue, *[{"handler": "ordered", "n": n} for n in range(3)])
    worker = start_worker(queue, concurrency=3)
    try:
        wait_for_events(queue, 2, kind=EventKind.COMPLETE)  # offsets 1 and 2 acknowledged
        assert engine.committed(queue, 0) < 1, "committed past offset 0, still in flight"
    finally:
        hold_first.set()
    wait_for_events(queue, 3, kind=EventKind.COMPLETE)
    wait_for(lambda: engine.committed(queue, 0) == 3, 10, "the commit to reach offset 3")
    worker.stop()


@pytest.mark.parametrize(
    "engine", ["database", pytest.param("sqs", marks=pytest.mark.e2e)], indirect=True
)
def test_a_handler_slower_than_the_visibility_timeout_keeps_its_lease(
    engine: Engine, make_queue: MakeQueue, registry: Registry
) -> None:
    queue = make_queue(visibility_timeout=1)
    calls = Recorder()
    finish = threading.Event()
    extended: list[float] = []

    def counting_backend(queue: Queue) -> Backend:
        backend = get_backend(queue)
        extend = backend.extend

        def counted(delivery: Delivery, seconds: float) -> None:
            extend(delivery, seconds)
            extended.append(time.monotonic())

        backend.extend = counted  # type: ignore[method-assign]
        return backend

    @registry.handler("slow")
    def handle(message: dict[str, Any], ctx: Context) -> None:
        calls.record(message, ctx)
        finish.wait(20)
        ctx.ack()

    publish(queue, {"handler": "slow"})
    worker = Worker(
        queue,
        registry=registry,
        options=WorkerOptions(**{**FAST, "concurrency": 2}),
        backend_factory=counting_backend,
    )
    worker.start()
    try:
        (first,) = calls.wait_count(1)
        # Until the lease has been renewed past twice the original timeout.
        wait_for(lambda: extended and extended[-1] - first.at >= 2.0, 10, "lease extensions")
        with get_backend(queue) as backend:
            stats = backend.stats()
        assert (stats.in_flight, stats.depth) == (1, 0), "the message is still leased to us"
        assert len(calls.calls) == 1, "delivered again while its handler ran"
        finish.set()
        wait_for_events(queue, 1, kind=EventKind.COMPLETE)
    finally:
        finish.set()
        worker.stop()
    assert len(extended) >= 3
    assert not events(queue, level=Level.ERROR)


@pytest.mark.parametrize("engine", ["database"], indirect=True)
def test_a_failing_fetch_is_tried_again_with_backoff(
    engine: Engine, make_queue: MakeQueue, registry: Registry
) -> None:
    queue = make_queue()
    calls = Recorder()
    failures: list[float] = []

    def flaky_backend(queue: Queue) -> Backend:
        backend = get_backend(queue)
        fetch = backend.fetch

        def flaky(max_messages: int = 10, wait_seconds: float = 1.0) -> list[Delivery]:
            if len(failures) < 2:
                failures.append(time.monotonic())
                raise BrokerUnavailable("the engine is down")
            return fetch(max_messages, wait_seconds)

        backend.fetch = flaky  # type: ignore[method-assign]
        return backend

    registry.handler("ok")(lambda message, ctx: (calls.record(message, ctx), ctx.ack()))
    publish(queue, {"handler": "ok"})
    worker = Worker(
        queue, registry=registry, options=WorkerOptions(**FAST), backend_factory=flaky_backend
    )
    worker.start()
    try:
        calls.wait_count(1)
        wait_for_events(queue, 1, kind=EventKind.COMPLETE)
    finally:
        worker.stop()
    assert worker.error is None
    assert failures[1] - failures[0] >= 0.5, "the second try waited"
    (logged,) = events(queue, kind=EventKind.LOG, level=Level.ERROR)
    assert "the engine is down" in logged.detail


@pytest.mark.parametrize("engine", ["database"], indirect=True)
def test_an_unexpected_consumer_error_ends_the_worker_with_the_error(
    engine: Engine, make_queue: MakeQueue, registry: Registry
) -> None:
    queue = make_queue()

    def broken_backend(queue: Queue) -> Backend:
        raise RuntimeError("no backend for you")

    worker = Worker(
        queue, registry=registry, options=WorkerOptions(**FAST), backend_factory=broken_backend
    )
    worker.start()
    assert worker.finished.wait(10)
    worker.stop()
    assert isinstance(worker.error, RuntimeError)


@pytest.mark.django_db(transaction=True)
def test_a_lost_lease_in_an_acknowledged_batch_is_reported_and_the_others_are_removed(
    registry: Registry,
) -> None:
    """Acks are settled in batches (``Backend.ack_many``): one delivery whose lease another
    consumer took fails alone, with an error in the log, and the rest of the batch is removed."""
    from queues.backends.database import DatabaseBackend
    from queues.models import DatabaseMessage
    from tests.queues.backends.engines import DatabaseEngine
    from workers.middleware import Metrics

    queue = DatabaseEngine().make_queue(visibility_timeout=30)
    ids = publish(queue, *[{"handler": "done", "n": n} for n in range(4)])
    stolen = ids[2]

    class LeaseTaken(DatabaseBackend):
        """The real backend; before it settles a batch, another consumer takes one lease."""

        def ack_many(self, deliveries: Any) -> Any:
            DatabaseMessage.objects.filter(message_id=stolen).update(lease_token=uuid.uuid4())
            return super().ack_many(deliveries)

    @registry.handler("done")
    def done(message: dict[str, Any], ctx: Context) -> None:
        ctx.ack()

    worker = Worker(
        queue, registry=registry, options=WorkerOptions(**FAST), backend_factory=LeaseTaken
    )
    worker.start()
    try:
        complete = wait_for_events(queue, 3, kind=EventKind.COMPLETE)
        (error,) = wait_for_events(queue, 1, level=Level.ERROR)
    finally:
        worker.stop(drain_seconds=0)
    assert {e.message_id for e in complete} == set(ids) - {stolen}
    assert error.message_id == stolen
    assert "Could not ack" in error.detail
    metrics = worker.find(Metrics)
    assert metrics is not None
    assert metrics.snapshot()["settle_errors"] == 1
    left = DatabaseMessage.objects.filter(queue=queue).values_list("message_id", flat=True)
    assert list(left) == [uuid.UUID(stolen)], "the other three were removed"
