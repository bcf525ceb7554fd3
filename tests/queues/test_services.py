"""The services layer the API and the back-office call."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from queues.backends.base import OutgoingMessage
from queues.models import DatabaseMessage, Queue
from queues.services import (
    check_connection,
    create_queue,
    provision,
    publish,
    queue_stats,
    resolve_queue,
    update_queue,
)

pytestmark = pytest.mark.django_db


def test_create_queue_validates_and_encrypts() -> None:
    with pytest.raises(ValidationError):
        create_queue(name="bad name", type="database")
    queue = create_queue(
        name="mail",
        type="rabbitmq",
        url="amqp://mq:5672/",
        username="app",
        secret="pw-123456789012",
    )
    assert queue.secret_ciphertext
    assert "pw-123456789012" not in queue.secret_ciphertext
    assert queue.masked_secret == "••••9012"


def test_update_keeps_or_replaces_the_secret() -> None:
    queue = create_queue(
        name="mail", type="rabbitmq", url="amqp://mq/", username="app", secret="first-secret"
    )
    update_queue(queue, max_attempts=7)
    assert Queue.objects.get(pk=queue.pk).get_secret() == "first-secret"
    update_queue(queue, secret="second-secret")
    assert Queue.objects.get(pk=queue.pk).get_secret() == "second-secret"


def test_resolve_queue_by_id_or_name() -> None:
    first = create_queue(name="orders", type="database")
    numeric = create_queue(name="12345", type="database")
    assert resolve_queue(first.pk) == first
    assert resolve_queue(str(first.pk)) == first
    assert resolve_queue("orders") == first
    assert resolve_queue("12345") == numeric  # no queue has id 12345: then it is a name
    with pytest.raises(Queue.DoesNotExist):
        resolve_queue("missing")


def test_database_queue_end_to_end_through_services() -> None:
    queue = create_queue(name="jobs", type="database")
    provision(queue)
    assert check_connection(queue).ok
    results = publish(queue, [{"handler": "a"}, OutgoingMessage.new({"handler": "b"})])
    assert [set(r.as_response()) for r in results] == [{"message-id", "broker-id"}] * 2
    assert DatabaseMessage.objects.filter(queue=queue).count() == 2
    assert queue_stats(queue).depth == 2
