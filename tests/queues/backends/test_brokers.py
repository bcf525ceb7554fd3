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
from tests.queues.helpers import fetch_n
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
