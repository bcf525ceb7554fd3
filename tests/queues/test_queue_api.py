"""Queue administration over the API: CRUD with write-only secrets, check, provision, stats,
test message."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from queues.models import Queue
from tests.queues.backends.engines import Engine, unique_name

API = "/api/v1/queues/"


@pytest.fixture
def admin(db: None) -> APIClient:
    user = User.objects.create_user("root")
    user.groups.add(Group.objects.get(name="admins"))
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_secrets_are_write_only_and_encrypted(admin: APIClient):
    body = {
        "name": "billing",
        "type": "rabbitmq",
        "url": "amqp://127.0.0.1:5672/",
        "username": "billing",
        "secret": "correct-horse-battery-staple",
    }
    created = admin.post(API, body, format="json")
    assert created.status_code == 201, created.content
    assert "secret" not in created.json()
    assert created.json()["secret_set"] is True
    assert "aple" not in created.content.decode()  # not even its last characters
    queue = Queue.objects.get(name="billing")
    assert "correct-horse" not in queue.secret_ciphertext
    assert queue.get_secret() == "correct-horse-battery-staple"

    listed = admin.get(API).content.decode()
    assert "correct-horse" not in listed

    kept = admin.patch(f"{API}{queue.pk}/", {"enabled": False}, format="json")
    assert kept.status_code == 200
    queue.refresh_from_db()
    assert queue.get_secret() == "correct-horse-battery-staple"
    assert queue.enabled is False


def test_configuration_is_validated_per_type(admin: APIClient):
    bad = admin.post(
        API, {"name": "x", "type": "kafka", "fifo": True, "url": "nohost"}, format="json"
    )
    assert bad.status_code == 400
    body = bad.json()
    assert body["code"] == "invalid"
    assert set(body["fields"]) >= {"fifo", "url"}
    assert Queue.objects.count() == 0


def test_only_admins_manage_queues(db: None):
    user = User.objects.create_user("clerk")
    client = APIClient()
    client.force_authenticate(user)
    assert client.get(API).status_code == 403
    assert APIClient().get(API).status_code == 401


def test_check_provision_stats_and_a_test_message(admin: APIClient, engine: Engine):
    queue = engine.make_queue()
    url = f"{API}{queue.pk}/"

    assert admin.post(url + "provision/").json() == {"ok": True}
    check = admin.post(url + "check/").json()
    assert check["ok"] is True
    sent = admin.post(url + "test-message/", {"handler": "log", "payload": {"n": 1}}, format="json")
    assert sent.status_code == 201, sent.content
    [held] = engine.read_back(queue, 1)
    assert held.message_id == sent.json()["message-id"]
    stats = admin.get(url + "stats/").json()
    assert set(stats) == {"depth", "in_flight", "dead_letters", "lag", "consumers"}


@pytest.mark.e2e
def test_check_says_why_a_broker_is_unreachable(admin: APIClient, broker: Engine):
    queue = Queue.objects.create(
        name=unique_name(broker.type), type=broker.type, url=broker.unreachable_url or ""
    )
    response = admin.post(f"{API}{queue.pk}/check/")
    assert response.status_code == 503
    assert response.json()["code"] == "broker_unavailable"


def test_a_rabbitmq_queue_takes_a_max_priority_and_no_other_type_does(admin: APIClient):
    body = {"name": "urgent", "type": "rabbitmq", "max_priority": 10}
    created = admin.post(API, body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["max_priority"] == 10
    assert Queue.objects.get(name="urgent").max_priority == 10
    refused = admin.post(API, {"name": "q", "type": "database", "max_priority": 3}, format="json")
    assert refused.status_code == 400
    assert "RabbitMQ queues only" in refused.json()["fields"]["max_priority"][0]
