"""SQS specifics on ElasticMQ: batching limits, FIFO groups and deduplication, binary bodies."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from queues.backends import get_backend
from queues.backends.sqs import SqsBackend
from queues.messages import OutgoingMessage
from queues.models import Queue, QueueType
from tests.queues.backends.engines import SqsEngine
from tests.queues.helpers import fetch_n, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]


@pytest.fixture
def sqs() -> Iterator[SqsEngine]:
    engine = SqsEngine()
    try:
        yield engine
    finally:
        engine.cleanup()


def provisioned(engine: SqsEngine, **options: object) -> Queue:
    queue = engine.make_queue(**options)
    with get_backend(queue) as backend:
        backend.provision()
    return queue


def test_batches_are_cut_at_ten_messages_and_at_one_mib(sqs: SqsEngine) -> None:
    queue = provisioned(sqs)
    small = [OutgoingMessage.new({"n": n}) for n in range(23)]
    big = [OutgoingMessage.new(b'"' + b"x" * 400_000 + b'"') for _ in range(3)]
    with get_backend(queue) as backend:
        assert isinstance(backend, SqsBackend)
        sizes = [backend.message_size(m) for m in small + big]
        chunks = list(
            backend._chunks([(m, ("", None, s)) for m, s in zip(small + big, sizes, strict=True)])
        )
        assert [len(c) for c in chunks] == [10, 10, 5, 1]  # 3 small + 2 big, then the third big
        results = backend.publish(small + big)
    assert len({r.as_response()["sqs-id"] for r in results}) == 26
    assert {r.message_id for r in sqs.read_back(queue, 26)} == {m.message_id for m in small + big}


def test_fifo_uses_the_ordering_key_as_group_and_our_id_for_deduplication(sqs: SqsEngine) -> None:
    queue = Queue(
        name=f"t-sqs-{uuid.uuid4().hex[:10]}.fifo", type=QueueType.SQS, url=sqs.url(), fifo=True
    )
    queue.full_clean()
    queue.save()
    sqs.created.append(queue)
    with get_backend(queue) as backend:
        backend.provision()
        first = OutgoingMessage.new({"n": 1}, ordering_key="orders:42")
        second = OutgoingMessage.new({"n": 2}, ordering_key="orders:42")
        backend.publish([first, second])
        backend.publish([first])  # the outbox sending it again: deduplicated by SQS

        deliveries = fetch_n(backend, 2)
        assert [d.message_id for d in deliveries] == [first.message_id, second.message_id]
        assert {d.ordering_key for d in deliveries} == {"orders:42"}
        for delivery in deliveries:
            backend.ack(delivery)
        assert wait_for(lambda: sqs.unacknowledged(queue, backend) == 0, 5, "an empty queue")

        # A FIFO dead letter goes to <base>-dlq.fifo, keeping its group.
        backend.publish([OutgoingMessage.new({"n": 3}, ordering_key="orders:42")])
        (delivery,) = fetch_n(backend, 1)
        backend.dead_letter(delivery, "poison")
        assert backend.stats().dead_letters == 1
    dlq = sqs.client.get_queue_url(QueueName=queue.name.removesuffix(".fifo") + "-dlq.fifo")
    assert dlq["QueueUrl"]


def test_binary_bodies_travel_base64_and_come_back_as_sent(sqs: SqsEngine) -> None:
    queue = provisioned(sqs)
    raw = bytes(range(256))
    message = OutgoingMessage(str(uuid.uuid4()), raw)
    with get_backend(queue) as backend:
        backend.publish([message])
        (delivery,) = fetch_n(backend, 1)
        assert delivery.body == raw
        assert delivery.headers == {}
        backend.ack(delivery)


def test_redrive_moves_a_message_received_max_attempts_times_to_the_dlq(sqs: SqsEngine) -> None:
    """The broker's own safety net: a consumer that keeps crashing never acks; after
    ``max_attempts`` receives SQS moves the message to ``<name>-dlq``."""
    queue = provisioned(sqs, max_attempts=1)
    message = OutgoingMessage.new({"handler": "crashes"})
    with get_backend(queue) as backend:
        backend.publish([message])
        (delivery,) = fetch_n(backend, 1)
        assert delivery.attempt == 1

        def redriven() -> bool:
            assert backend.fetch(1, wait_seconds=1) == []  # never delivered a second time
            return backend.stats().dead_letters == 1

        wait_for(redriven, 10, "the redrive to the DLQ")
    (dead,) = sqs.read_dead_letters(queue, 1)
    assert dead.message_id == message.message_id
    assert dead.reason is None  # moved by SQS itself: no reason of ours
