"""The backend contract, proven on every engine against the real service.

Where a test needs to know what the broker holds, it asks the engine's own client (see
``engines.py``), not the backend under test.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable

import pytest

from queues.backends import get_backend
from queues.backends.base import Backend
from queues.errors import BrokerUnavailable, MessageTooLarge
from queues.messages import OutgoingMessage, QueueStats
from queues.models import Queue, QueueType
from tests.queues.backends.engines import Engine
from tests.queues.helpers import fetch_n, fetch_nothing, wait_for


def messages(count: int, **extra: object) -> list[OutgoingMessage]:
    return [
        OutgoingMessage.new({"handler": "test", "n": n, **extra}, headers={"source": "tests"})
        for n in range(count)
    ]


def sized(backend: Backend, size: int) -> OutgoingMessage:
    """A JSON message that the backend measures at exactly ``size`` bytes."""
    message_id = str(uuid.uuid4())
    base = backend.message_size(OutgoingMessage(message_id, b'""'))
    return OutgoingMessage(message_id, b'"' + b"x" * (size - base) + b'"')


def test_provision_is_idempotent(engine: Engine, queue: Queue, backend: Backend) -> None:
    backend.provision()  # the fixture provisioned once already
    backend.provision()
    assert engine.is_provisioned(queue)
    result = backend.check()
    assert result.ok
    assert result.provisioned is True


def test_publish_returns_broker_ids_and_the_broker_holds_the_messages(
    engine: Engine, queue: Queue, backend: Backend
) -> None:
    batch = messages(3)
    results = backend.publish(batch)

    assert [r.message_id for r in results] == [m.message_id for m in batch]
    responses = [r.as_response() for r in results]
    for message, response in zip(batch, responses, strict=True):
        assert response["message-id"] == message.message_id
        if engine.type == QueueType.SQS:
            assert set(response) == {"message-id", "sqs-id"}
            assert isinstance(response["sqs-id"], str)
            assert response["sqs-id"]
        elif engine.type == QueueType.KAFKA:
            assert set(response) == {"message-id", "kafka-offset"}
            assert set(response["kafka-offset"]) == {"partition", "offset"}
        elif engine.type == QueueType.RABBITMQ:
            assert response == {"message-id": message.message_id, "broker-id": message.message_id}
        else:
            assert set(response) == {"message-id", "broker-id"}
            assert isinstance(response["broker-id"], int)

    held = {r.message_id: r for r in engine.read_back(queue, 3)}
    assert set(held) == {m.message_id for m in batch}
    for message in batch:
        assert json.loads(held[message.message_id].body) == message.body
    if engine.type == QueueType.KAFKA:
        for response in responses:
            record = held[response["message-id"]]
            assert response["kafka-offset"] == {
                "partition": record.partition,
                "offset": record.offset,
            }
    if engine.type == QueueType.DATABASE:
        assert {r["broker-id"] for r in responses} == {held[m].offset for m in held}


def test_fetch_then_ack_removes_the_message(engine: Engine, queue: Queue, backend: Backend) -> None:
    (message,) = messages(1)
    backend.publish([message])

    (delivery,) = fetch_n(backend, 1)
    assert delivery.message_id == message.message_id
    assert delivery.json() == message.body
    assert delivery.attempt == 1
    assert delivery.headers == {"source": "tests"}
    backend.ack(delivery)

    assert engine.unacknowledged(queue, backend) == 0


def test_ack_many_settles_a_batch_acknowledged_out_of_order(
    engine: Engine, queue: Queue, backend: Backend
) -> None:
    backend.publish(messages(6))
    fetched = fetch_n(backend, 6)
    # Handlers finish in any order: a later batch, then the oldest, then the rest.
    first, second, third = [fetched[3], fetched[1]], [fetched[0], fetched[2]], fetched[4:]
    for batch in (first, second, third):
        assert backend.ack_many(batch) == [None] * len(batch)

    # Kafka commits a batch asynchronously, one commit in flight at a time: a consumer keeps
    # fetching, which serves the answer and sends what waited.
    fetch_nothing(backend, wait_seconds=0.5)
    wait_for(lambda: engine.unacknowledged(queue, backend) == 0, 10, "the batch to be settled")


def test_ack_many_leaves_the_deliveries_it_was_not_given(
    engine: Engine, queue: Queue, backend: Backend
) -> None:
    backend.publish(messages(3))
    oldest, *newer = fetch_n(backend, 3)
    assert backend.ack_many(newer) == [None, None]

    consumer = engine.redeliver(backend)
    try:
        again = fetch_n(consumer, 1, timeout=20)[0]
        assert again.message_id == oldest.message_id
        if engine.type != QueueType.KAFKA:
            # Kafka commits positions: the newer ones behind the oldest on its partition come
            # back too (at least once); the others removed exactly what they were given.
            consumer.ack(again)
            fetch_nothing(consumer, wait_seconds=0.5)
    finally:
        consumer.close()


def test_unacknowledged_message_is_delivered_again(
    engine: Engine, queue: Queue, backend: Backend
) -> None:
    (message,) = messages(1)
    backend.publish([message])
    (first,) = fetch_n(backend, 1)
    fetched_at = time.monotonic()
    if engine.has_visibility_timeout:
        fetch_nothing(backend, wait_seconds=0)  # hidden while the lease lasts

    consumer = engine.redeliver(backend)
    try:
        (again,) = fetch_n(consumer, 1, timeout=20)
        assert again.message_id == first.message_id
        assert again.body == first.body
        if engine.has_visibility_timeout:
            assert time.monotonic() - fetched_at >= queue.visibility_timeout * 0.8
        if engine.counts_redeliveries:
            assert again.attempt == 2
        consumer.ack(again)
    finally:
        consumer.close()


def test_retry_later_delays_and_increments_the_attempt(
    engine: Engine, queue: Queue, backend: Backend
) -> None:
    (message,) = messages(1)
    backend.publish([message])
    (first,) = fetch_n(backend, 1)
    assert first.attempt == 1

    backend.retry_later(first, 1.0)
    retried_at = time.monotonic()
    fetch_nothing(backend, wait_seconds=0.2)
    (again,) = fetch_n(backend, 1, timeout=15)
    assert time.monotonic() - retried_at >= 0.8
    assert again.message_id == message.message_id
    assert again.json() == message.body
    assert again.attempt == 2
    assert again.headers == {"source": "tests"}
    backend.ack(again)
    assert engine.unacknowledged(queue, backend) == 0


def test_dead_letter_moves_the_message_with_its_reason(
    engine: Engine, queue: Queue, backend: Backend
) -> None:
    (message,) = messages(1)
    backend.publish([message])
    (delivery,) = fetch_n(backend, 1)

    backend.dead_letter(delivery, "handler send_email failed: SMTP 550")

    assert wait_for(lambda: backend.stats().dead_letters == 1, 5, "the DLQ count")
    (dead,) = engine.read_dead_letters(queue, 1)
    assert dead.message_id == message.message_id
    assert json.loads(dead.body) == message.body
    assert dead.reason == "handler send_email failed: SMTP 550"
    assert engine.unacknowledged(queue, backend) == 0


def test_too_large_message_publishes_nothing_of_the_batch(
    engine: Engine, queue: Queue, backend: Backend
) -> None:
    small = messages(2)
    huge = sized(backend, backend.max_message_bytes + 1)

    with pytest.raises(MessageTooLarge) as raised:
        backend.publish([small[0], huge, small[1]])
    assert raised.value.code == "message_too_large"
    assert raised.value.message_id == huge.message_id

    assert engine.unacknowledged(queue, backend) == 0
    assert backend.stats().depth == 0


def test_largest_allowed_message_is_accepted(
    engine: Engine, queue: Queue, backend: Backend
) -> None:
    """The documented limit is the engine's real one: a message of exactly that size passes."""
    largest = sized(backend, backend.max_message_bytes)
    assert backend.message_size(largest) == backend.max_message_bytes
    (result,) = backend.publish([largest])
    assert result.message_id == largest.message_id
    (record,) = engine.read_back(queue, 1)
    assert record.message_id == largest.message_id
    assert len(record.body) == len(largest.body_bytes())


def test_stats_reflect_depth(engine: Engine, queue: Queue, backend: Backend) -> None:
    assert backend.stats().depth == 0
    backend.publish(messages(3))

    def stats_when(condition: Callable[[QueueStats], bool]) -> Callable[[], QueueStats | None]:
        def probe() -> QueueStats | None:
            stats = backend.stats()
            return stats if condition(stats) else None

        return probe

    stats = wait_for(stats_when(lambda s: s.depth == 3), 5, "depth 3")
    assert stats.dead_letters == 0
    if engine.type == QueueType.KAFKA:
        assert stats.lag == 3
    if stats.in_flight is not None:  # SQS and database report leases
        assert stats.in_flight == 0
        fetch_n(backend, 1)
        after = wait_for(stats_when(lambda s: s.in_flight == 1), 5, "1 in flight")
        assert after.depth == 2


@pytest.mark.parametrize("operation", ["check", "publish"])
def test_unreachable_broker_fails_fast(broker: Engine, operation: str) -> None:
    """A closed port: BrokerUnavailable within seconds, not a hang or an endless retry."""
    queue = Queue(
        name=f"t-down-{uuid.uuid4().hex[:8]}", type=broker.type, url=broker.unreachable_url or ""
    )
    started = time.monotonic()
    with get_backend(queue) as backend:
        call = backend.check if operation == "check" else lambda: backend.publish(messages(1))
        with pytest.raises(BrokerUnavailable) as raised:
            call()
    assert raised.value.code == "broker_unavailable"
    assert time.monotonic() - started < 6
