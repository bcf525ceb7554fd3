"""The engines are real: one round trip per engine over a real connection.

Addresses come from the environment, as printed by ``platform/services env``::

    platform/services up && eval "$(platform/services env)" && pytest tests/e2e/test_engines.py

A test is skipped when its variable is unset, unless ``QUAYMASTER_REQUIRE_SERVICES=1``: then a
missing variable or an unreachable engine fails the test instead.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import time
import uuid
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import pytest

from tests.services import missing_service, service_env

pytestmark = pytest.mark.e2e

T = TypeVar("T")


def service_address(variable: str) -> str:
    return service_env(variable).strip()


def unreachable(engine: str, error: BaseException) -> NoReturn:
    """An engine that does not answer: skip, or fail when services are required."""
    missing_service(f"{engine} is unreachable: {error!r} (run: platform/services up)")


def client_library(module: str) -> Any:
    """Import an engine's client library; skip (or fail, if required) when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        missing_service(f"{module} is not installed: {error}")


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def poll(fetch: Callable[[], T | None], timeout: float, what: str) -> T:
    """Call ``fetch`` until it returns something other than None, for at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = fetch()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")


def test_kafka_idempotent_produce_and_committed_consume() -> None:
    confluent_kafka = client_library("confluent_kafka")
    from confluent_kafka.admin import AdminClient, NewTopic

    bootstrap = service_address("KAFKA_BOOTSTRAP_SERVERS")
    # librdkafka logs through Python logging (captured by pytest) instead of raw stderr.
    common: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "logger": logging.getLogger("e2e.kafka"),
    }
    admin = AdminClient(common)
    try:
        admin.list_topics(timeout=5)
    except confluent_kafka.KafkaException as error:
        unreachable("Kafka", error)

    topic = unique_name("e2e-engines")
    futures = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    futures[topic].result(timeout=30)
    try:
        reports: list[tuple[Any, Any]] = []
        producer = confluent_kafka.Producer({**common, "enable.idempotence": True, "acks": "all"})
        producer.produce(
            topic,
            key=b"k",
            value=b"hello kafka",
            on_delivery=lambda err, msg: reports.append((err, msg)),
        )
        assert producer.flush(30) == 0, "message still queued after flush"
        assert len(reports) == 1
        delivery_error, delivered = reports[0]
        assert delivery_error is None, f"delivery failed: {delivery_error}"
        offset = delivered.offset()
        assert offset >= 0

        group = unique_name("e2e-engines-group")
        consumer = confluent_kafka.Consumer(
            {
                **common,
                "group.id": group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        try:
            consumer.subscribe([topic])

            def next_message() -> Any:
                message = consumer.poll(0.5)
                if message is None:
                    return None
                assert message.error() is None, message.error()
                return message

            message = poll(next_message, 60, "the Kafka message")
            assert message.value() == b"hello kafka"
            assert message.offset() == offset

            consumer.commit(message=message, asynchronous=False)
            partition = confluent_kafka.TopicPartition(topic, message.partition())
            (committed,) = consumer.committed([partition], timeout=10)
            assert committed.error is None
            assert committed.offset == offset + 1
        finally:
            consumer.close()
    finally:
        admin.delete_topics([topic])[topic].result(timeout=30)


def test_sqs_send_receive_delete() -> None:
    boto3 = client_library("boto3")
    import botocore.config
    import botocore.exceptions

    endpoint = service_address("SQS_ENDPOINT_URL")
    sqs = boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "x"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "x"),
        config=botocore.config.Config(
            connect_timeout=5, read_timeout=30, retries={"max_attempts": 2, "mode": "standard"}
        ),
    )
    try:
        sqs.list_queues()
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        unreachable("the SQS server", error)

    queue_url = sqs.create_queue(QueueName=unique_name("e2e-engines"))["QueueUrl"]
    try:
        sqs.send_message(QueueUrl=queue_url, MessageBody="hello sqs")

        def receive() -> dict | None:
            messages = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=1
            ).get("Messages", [])
            return messages[0] if messages else None

        message = poll(receive, 30, "the SQS message")
        assert message["Body"] == "hello sqs"
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        assert attributes["ApproximateNumberOfMessages"] == "0"
        assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
        again = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)
        assert again.get("Messages", []) == []
    finally:
        sqs.delete_queue(QueueUrl=queue_url)


def test_rabbitmq_confirmed_publish_and_acked_consume() -> None:
    kombu = client_library("kombu")

    url = service_address("AMQP_URL")
    name = unique_name("e2e-engines")
    with kombu.Connection(url, transport_options={"confirm_publish": True}) as connection:
        try:
            connection.ensure_connection(max_retries=1)
        except Exception as error:  # kombu wraps socket errors in its own hierarchy
            unreachable("RabbitMQ", error)

        queue = kombu.Queue(name, exchange="", routing_key=name, durable=True, auto_delete=False)
        channel = connection.channel()
        bound = queue(channel)
        bound.declare()
        try:
            # With confirm_publish, publish() returns only once the broker has confirmed it.
            kombu.Producer(channel).publish(
                {"hello": "rabbitmq"},
                exchange="",
                routing_key=name,
                delivery_mode=kombu.entity.PERSISTENT_DELIVERY_MODE,
            )

            received: list[Any] = []
            with kombu.Consumer(
                channel,
                queues=[bound],
                no_ack=False,
                callbacks=[lambda _body, m: received.append(m)],
            ):
                deadline = time.monotonic() + 30
                while not received:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        pytest.fail("timed out waiting for the RabbitMQ message")
                    with contextlib.suppress(TimeoutError):  # nothing arrived yet
                        connection.drain_events(timeout=min(remaining, 1.0))
            (message,) = received
            assert message.payload == {"hello": "rabbitmq"}
            assert message.properties.get("delivery_mode") == 2
            message.ack()

            _, message_count, _ = channel.queue_declare(queue=name, passive=True)
            assert message_count == 0
        finally:
            bound.delete()
            channel.close()


def test_postgresql_version() -> None:
    psycopg = client_library("psycopg")

    url = service_address("DATABASE_URL")
    try:
        connection = psycopg.connect(url, connect_timeout=10)
    except psycopg.OperationalError as error:
        unreachable("PostgreSQL", error)
    with connection:
        version = connection.execute("select version()").fetchone()[0]
        assert "PostgreSQL" in version
        version_num = int(connection.execute("show server_version_num").fetchone()[0])
        assert version_num >= 150000
