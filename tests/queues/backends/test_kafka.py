"""Kafka's commit discipline: acknowledgements commit only the acknowledged prefix."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka import OFFSET_INVALID

from queues.backends import get_backend
from queues.backends.base import Backend
from queues.messages import Delivery, OutgoingMessage
from queues.models import Queue
from tests.queues.backends.engines import KafkaEngine
from tests.queues.helpers import fetch_n

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]


@pytest.fixture
def kafka() -> Iterator[KafkaEngine]:
    engine = KafkaEngine()
    try:
        yield engine
    finally:
        engine.cleanup()


@pytest.fixture
def one_partition(kafka: KafkaEngine) -> Queue:
    queue = kafka.make_queue(partitions=1)
    with get_backend(queue) as backend:
        backend.provision()
    return queue


def three_fetched(queue: Queue, backend: Backend) -> dict[int, Delivery]:
    backend.publish([OutgoingMessage.new({"handler": "t", "n": n}) for n in range(3)])
    by_offset = {d.handle.offset: d for d in fetch_n(backend, 3)}
    assert sorted(by_offset) == [0, 1, 2]
    return by_offset


def test_out_of_order_acks_never_commit_past_an_unacknowledged_offset(
    kafka: KafkaEngine, one_partition: Queue
) -> None:
    with get_backend(one_partition) as backend:
        fetched = three_fetched(one_partition, backend)

        backend.ack(fetched[2])
        backend.ack(fetched[1])
        committed = kafka.committed(one_partition)
        assert committed in (OFFSET_INVALID, 0), f"committed {committed} past unacked offset 0"

        backend.ack(fetched[0])
        assert kafka.committed(one_partition) == 3


def test_a_crash_after_out_of_order_acks_delivers_again_from_the_first_unacknowledged(
    kafka: KafkaEngine, one_partition: Queue
) -> None:
    backend = get_backend(one_partition)
    fetched = three_fetched(one_partition, backend)
    backend.ack(fetched[0])
    backend.ack(fetched[2])
    backend.close()  # offset 1 was never acknowledged

    with get_backend(one_partition) as restarted:
        again = fetch_n(restarted, 2)
        assert [d.handle.offset for d in again] == [1, 2]  # at least once: 2 comes back too
        assert again[0].message_id == fetched[1].message_id
        for delivery in again:
            restarted.ack(delivery)
        assert kafka.committed(one_partition) == 3
