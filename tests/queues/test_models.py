"""Queues as data: per-type validation, secrets encrypted at rest, key rotation."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from queues import crypto
from queues.errors import BadConfiguration
from queues.models import Queue, QueueType
from queues.services import create_queue

pytestmark = pytest.mark.django_db


def errors_of(**fields: object) -> dict[str, list[str]]:
    queue = Queue(**fields)
    with pytest.raises(ValidationError) as raised:
        queue.full_clean()
    return raised.value.message_dict


def valid(**fields: object) -> Queue:
    queue = Queue(**fields)
    queue.full_clean()
    return queue


@pytest.mark.parametrize("name", ["-leading-dash", "has space", "slash/name", "x" * 81, ""])
def test_names_must_suit_every_engine(name: str) -> None:
    assert "name" in errors_of(name=name, type=QueueType.DATABASE)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"type": "kafka", "fifo": True}, "fifo", "FIFO applies to SQS queues only."),
        (
            {"type": "rabbitmq", "partitions": 3},
            "partitions",
            "Partitions apply to Kafka queues only.",
        ),
        (
            {"type": "database", "region": "eu-west-1"},
            "region",
            "Region applies to SQS queues only.",
        ),
        ({"type": "sqs", "fifo": True}, "name", "An SQS FIFO queue's name must end in '.fifo'."),
        (
            {"type": "sqs", "name": "jobs.fifo"},
            "fifo",
            "A name ending in '.fifo' is an SQS FIFO queue: tick FIFO.",
        ),
        (
            {"type": "sqs", "name": "orders.v2"},
            "name",
            "SQS queue names may not contain '.' (except the '.fifo' suffix).",
        ),
        (
            {"type": "sqs", "name": "q" * 77},
            "name",
            "SQS queue names are at most 76 characters here, so that the dead-letter queue "
            "'<name>-dlq' fits in 80.",
        ),
        (
            {"type": "sqs", "visibility_timeout": 43_201},
            "visibility_timeout",
            "SQS visibility timeouts are 0 to 43200 seconds.",
        ),
        (
            {"type": "sqs", "url": "amqp://broker:5672/"},
            "url",
            "An SQS endpoint URL starts with http:// or https:// and names a host.",
        ),
        (
            {"type": "sqs", "username": "AKIAEXAMPLE"},
            "username",
            "Give both the access key id and the secret key, or neither.",
        ),
        (
            {"type": "kafka", "partitions": 0},
            "partitions",
            "Kafka topics have 1 to 1000 partitions here.",
        ),
        (
            {"type": "kafka", "partitions": 1001},
            "partitions",
            "Kafka topics have 1 to 1000 partitions here.",
        ),
        (
            {"type": "kafka", "url": "broker-without-port"},
            "url",
            "Kafka bootstrap servers are host:port, comma-separated.",
        ),
        (
            {"type": "kafka", "url": "http://broker:9092"},
            "url",
            "Kafka bootstrap servers are host:port, comma-separated.",
        ),
        (
            {"type": "rabbitmq", "url": "http://broker:15672/"},
            "url",
            "An AMQP URL starts with amqp:// or amqps:// and names a host.",
        ),
        (
            {"type": "rabbitmq", "url": "amqp://guest:guest@broker:5672/"},
            "url",
            "Put the user name and password in their fields, not in the URL.",
        ),
        (
            {"type": "rabbitmq", "name": "amq.internal"},
            "name",
            "RabbitMQ reserves queue names starting with 'amq.'.",
        ),
        (
            {"type": "database", "url": "postgres://elsewhere/db"},
            "url",
            "Database queues live in this deployment's database: leave url blank.",
        ),
        (
            {"type": "database", "visibility_timeout": 0},
            "visibility_timeout",
            "The visibility timeout must be at least 1 second.",
        ),
    ],
)
def test_per_type_validation_says_what_is_wrong(
    fields: dict[str, object], field: str, message: str
) -> None:
    fields = {"name": "orders", **fields}
    assert message in errors_of(**fields)[field]


@pytest.mark.parametrize("queue_type", ["database", "sqs", "kafka"])
def test_max_priority_is_for_rabbitmq_queues_only(queue_type: str) -> None:
    name = "orders.fifo" if queue_type == "sqs" else "orders"
    errors = errors_of(name=name, type=queue_type, max_priority=5, fifo=queue_type == "sqs")
    assert "Max priority applies to RabbitMQ queues only" in errors["max_priority"][0]


def test_a_rabbitmq_max_priority_is_0_to_10() -> None:
    assert valid(name="orders", type="rabbitmq", max_priority=10).max_priority == 10
    assert valid(name="orders", type="rabbitmq").max_priority == 0
    assert errors_of(name="orders", type="rabbitmq", max_priority=11)["max_priority"] == [
        "RabbitMQ recommends at most 10 priorities (0: none)."
    ]


def test_valid_queues_of_each_type() -> None:
    valid(
        name="orders.fifo",
        type="sqs",
        fifo=True,
        url="https://sqs.eu-west-1.amazonaws.com",
        region="eu-west-1",
    )
    valid(name="orders", type="sqs", visibility_timeout=0)
    kafka = valid(name="orders.events", type="kafka", url="k1:9092,k2:9093,[::1]:9094")
    assert kafka.partitions == 3  # the default, filled in for Kafka only
    valid(
        name="orders", type="rabbitmq", url="amqps://broker.example.com:5671/vhost", username="app"
    )
    assert valid(name="orders", type="database").partitions is None


def test_a_blank_url_means_the_deployments_engine() -> None:
    with override_settings(KAFKA_BOOTSTRAP_SERVERS="k:9092", AMQP_URL=""):
        assert Queue(name="a", type="kafka").connection_url == "k:9092"
        assert Queue(name="a", type="kafka", url="other:9092").connection_url == "other:9092"
        with pytest.raises(BadConfiguration, match="AMQP_URL"):
            _ = Queue(name="a", type="rabbitmq").connection_url


def test_the_secret_is_encrypted_at_rest_and_never_shown() -> None:
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY-1234"
    queue = create_queue(name="orders", type="sqs", username="AKIAEXAMPLE", secret=secret)

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM queues_queue WHERE id = %s", [queue.pk])
        row = cursor.fetchone()
        cursor.execute("SELECT secret_ciphertext FROM queues_queue WHERE id = %s", [queue.pk])
        (stored_column,) = cursor.fetchone()
    assert row is not None
    assert not any(secret in str(column) for column in row)
    assert stored_column.startswith("gAAAAA")  # a Fernet token

    stored = Queue.objects.get(pk=queue.pk)
    assert stored.get_secret() == secret
    assert stored.has_secret
    assert not hasattr(stored, "masked_secret")  # none of it is shown, not even a part


def test_short_and_missing_secrets() -> None:
    short = Queue(name="a", type="rabbitmq", username="u")
    short.set_secret("hunter2")
    assert short.has_secret
    assert not Queue(name="b").has_secret
    cleared = Queue(name="c")
    cleared.set_secret("")
    assert cleared.secret_ciphertext == ""


def test_key_rotation() -> None:
    key_a, key_b = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with override_settings(QUAYMASTER_ENCRYPTION_KEYS=[key_a]):
        queue = create_queue(
            name="rotating", type="rabbitmq", username="app", secret="s3cret-password"
        )
        made_with_a = Queue.objects.get(pk=queue.pk).secret_ciphertext

    with override_settings(QUAYMASTER_ENCRYPTION_KEYS=[key_b, key_a]):
        assert (
            Queue.objects.get(pk=queue.pk).get_secret() == "s3cret-password"
        )  # B first, A still decrypts
        out = io.StringIO()
        call_command("rotate_queue_secrets", stdout=out)
        assert "Re-encrypted 1 queue secret(s)" in out.getvalue()
        rotated = Queue.objects.get(pk=queue.pk).secret_ciphertext
        assert rotated != made_with_a

    with override_settings(QUAYMASTER_ENCRYPTION_KEYS=[key_b]):
        assert Queue.objects.get(pk=queue.pk).get_secret() == "s3cret-password"

    with override_settings(QUAYMASTER_ENCRYPTION_KEYS=[key_a]), pytest.raises(BadConfiguration):
        Queue.objects.get(pk=queue.pk).get_secret()  # A alone can no longer read it


def test_crypto_round_trip_and_rotate_helper() -> None:
    key_a, key_b = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with override_settings(QUAYMASTER_ENCRYPTION_KEYS=[key_a]):
        token = crypto.encrypt("p@ss")
    with override_settings(QUAYMASTER_ENCRYPTION_KEYS=[key_b, key_a]):
        rotated = crypto.rotate(token)
    with override_settings(QUAYMASTER_ENCRYPTION_KEYS=[key_b]):
        assert crypto.decrypt(rotated) == "p@ss"
        with pytest.raises(BadConfiguration):
            crypto.decrypt(token)
