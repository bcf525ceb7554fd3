"""What every server engine does with a queue that was never provisioned, and RabbitMQ's
refusals (ElasticMQ and the test Kafka accept any credentials, so only RabbitMQ can show a
credentials error here)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from queues.backends import get_backend
from queues.errors import BadConfiguration, LeaseLost, QueueMissing
from queues.messages import OutgoingMessage
from queues.models import Queue
from tests.queues.backends.engines import Engine, RabbitMqEngine
from tests.queues.helpers import fetch_n, wait_for
from tests.services import service_env

pytestmark = pytest.mark.django_db


@pytest.fixture
def unprovisioned(broker: Engine) -> Iterator[Queue]:
    queue = broker.make_queue()
    try:
        yield queue
    finally:
        broker.cleanup()


def test_a_queue_that_was_never_provisioned(unprovisioned: Queue) -> None:
    with get_backend(unprovisioned) as backend:
        result = backend.check()
        assert result.ok
        assert result.provisioned is False
        with pytest.raises(QueueMissing) as raised:
            backend.publish([OutgoingMessage.new({"handler": "t"})])
        assert raised.value.code == "queue_missing"
        with pytest.raises(QueueMissing):
            backend.stats()
        with pytest.raises(QueueMissing):
            backend.fetch(1, wait_seconds=0)


@pytest.fixture
def rabbitmq() -> Iterator[RabbitMqEngine]:
    engine = RabbitMqEngine()
    try:
        yield engine
    finally:
        engine.cleanup()


@pytest.mark.e2e
def test_rabbitmq_wrong_password_is_bad_configuration(rabbitmq: RabbitMqEngine) -> None:
    url = service_env("AMQP_URL")
    host = url.split("@")[-1]
    queue = Queue(name="t-rabbit-auth", type="rabbitmq", url=f"amqp://{host}", username="guest")
    queue.set_secret("not-the-password")
    with get_backend(queue) as backend, pytest.raises(BadConfiguration) as raised:
        backend.check()
    assert "refused" in raised.value.message


@pytest.mark.e2e
def test_rabbitmq_queue_declared_with_other_arguments_is_bad_configuration(
    rabbitmq: RabbitMqEngine,
) -> None:
    queue = rabbitmq.make_queue()
    with rabbitmq._channel() as channel:
        channel.queue_declare(queue.name, durable=True, auto_delete=False)  # no DLX arguments
    with get_backend(queue) as backend, pytest.raises(BadConfiguration):
        backend.provision()


@pytest.mark.e2e
def test_rabbitmq_publish_to_a_deleted_queue_is_an_error_not_a_silent_drop(
    rabbitmq: RabbitMqEngine,
) -> None:
    """The default exchange drops unroutable messages and still confirms them; ``mandatory``
    makes RabbitMQ return them, and the backend raises instead of reporting success."""
    queue = rabbitmq.make_queue()
    with get_backend(queue) as backend:
        backend.provision()
        backend.publish([OutgoingMessage.new({"handler": "t"})])
        with rabbitmq._channel() as channel:
            channel.queue_delete(queue.name)
        with pytest.raises(QueueMissing):
            backend.publish([OutgoingMessage.new({"handler": "t"})])


@pytest.mark.e2e
def test_rabbitmq_ack_many_after_the_connection_dropped_reports_every_delivery_lost(
    rabbitmq: RabbitMqEngine,
) -> None:
    """Delivery tags belong to a channel: after a reconnect, acking old tags would ack other
    messages (or close the channel). They are reported lost and RabbitMQ delivers them again."""
    queue = rabbitmq.make_queue()
    with get_backend(queue) as backend:
        backend.provision()
        backend.publish([OutgoingMessage.new({"handler": "t", "n": n}) for n in range(3)])
        old = fetch_n(backend, 3)
        backend.close()  # the connection goes; the three return to the queue

        again = fetch_n(backend, 3)
        results = backend.ack_many(old)
        assert all(isinstance(result, LeaseLost) for result in results)
        assert backend.ack_many(again) == [None, None, None]
    with rabbitmq._channel() as channel:
        assert channel.queue_declare(queue.name, passive=True).message_count == 0


@pytest.mark.e2e
def test_rabbitmq_priority_queue_delivers_a_high_priority_message_first(
    rabbitmq: RabbitMqEngine,
) -> None:
    """A queue with ``max_priority`` is declared with ``x-max-priority``; the message published
    last with priority 9 is the first one RabbitMQ hands out, read with its own client."""
    queue = rabbitmq.make_queue(max_priority=10)
    low = [OutgoingMessage.new({"handler": "t", "n": n}) for n in range(3)]
    high = OutgoingMessage.new({"handler": "t", "n": 3}, priority=9)
    with get_backend(queue) as backend:
        backend.provision()
        backend.publish(low)
        backend.publish([high])
    with rabbitmq._channel() as channel:
        declared = channel.queue_declare(queue.name, passive=True)
        assert declared.message_count == 4
        got = [channel.basic_get(queue.name, no_ack=True) for _ in range(4)]
    assert [m.properties["message_id"] for m in got] == [
        high.message_id,
        *(m.message_id for m in low),
    ]
    assert got[0].properties["priority"] == 9


@pytest.mark.e2e
def test_rabbitmq_a_retried_message_keeps_its_priority(rabbitmq: RabbitMqEngine) -> None:
    queue = rabbitmq.make_queue(max_priority=10)
    with get_backend(queue) as backend:
        backend.provision()
        backend.publish([OutgoingMessage.new({"handler": "t"}, priority=7)])
        (delivery,) = fetch_n(backend, 1)
        backend.retry_later(delivery, 0)  # via <name>.retry, dead-lettered back to <name>
    with rabbitmq._channel() as channel:
        again = wait_for(
            lambda: channel.basic_get(queue.name, no_ack=True), 10, "the retry back on the queue"
        )
    assert again.properties["message_id"] == delivery.message_id
    assert again.properties["priority"] == 7


@pytest.mark.e2e
def test_rabbitmq_max_priority_on_an_existing_queue_is_refused_with_the_way_out(
    rabbitmq: RabbitMqEngine,
) -> None:
    """RabbitMQ never changes a queue's arguments: provisioning a queue declared without
    ``x-max-priority`` with a max priority is PRECONDITION_FAILED, said plainly."""
    queue = rabbitmq.make_queue()
    with get_backend(queue) as backend:
        backend.provision()
    queue.max_priority = 5
    queue.full_clean()
    queue.save()
    with get_backend(queue) as backend, pytest.raises(BadConfiguration) as raised:
        backend.provision()
    assert "x-max-priority" in raised.value.message
    assert "new queue" in raised.value.message
