"""What the publish API tells a caller who probes it: no broker host or driver error in an
engine failure's answer (that goes to the log), and no word on which queues exist to someone
who may not publish to them (403 before 404)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User
from rest_framework.test import APIClient

from accounts.models import ApiToken
from queues.models import Queue
from queues.services import publishers

pytestmark = pytest.mark.django_db

#: A RabbitMQ address nobody listens on: the publish fails at connect, quickly.
DOWN_HOST = "127.0.0.1:1"


@pytest.fixture(autouse=True)
def _close_publishers() -> Any:
    publishers.close()
    yield
    publishers.close()


def token_for(user: User, *queues: Queue) -> APIClient:
    token, raw = ApiToken.issue(user, "probe", all_queues=not queues)
    token.queues.set(queues)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def publisher(name: str = "publisher") -> User:
    user = User.objects.create_user(name)
    user.user_permissions.add(Permission.objects.get(codename="publish_queue"))
    return user


def post(client: APIClient, url: str) -> Any:
    return client.post(url, json.dumps({"handler": "log"}), content_type="application/json")


def answers(client: APIClient, *names: str) -> list[tuple[int, dict[str, Any]]]:
    """The answer to a publish by name and a batch by id for each queue name."""
    got = []
    for name in names:
        queue = Queue.objects.filter(name=name).first()
        queue_id = queue.pk if queue else 999_999
        for url in (
            f"/api/v1/zstorage/queue/a/{name}/publish",
            f"/api/v1/zstorage/queue/{queue_id}/publish/batch",
        ):
            response = post(client, url)
            got.append((response.status_code, response.json()))
    return got


def test_without_publish_rights_every_queue_is_403_whether_it_exists_or_not():
    Queue.objects.create(name="payroll", type="database")
    clerk = User.objects.create_user("clerk")
    clerk.groups.add(Group.objects.get(name="business users"))
    seen = answers(token_for(clerk), "payroll", "no-such-queue")
    assert {status for status, _ in seen} == {403}
    assert len({json.dumps(body) for _, body in seen}) == 1, "every answer is the same"
    assert "payroll" not in json.dumps(seen)


def test_a_limited_token_cannot_tell_a_missing_queue_from_one_outside_its_limit():
    orders = Queue.objects.create(name="orders", type="database")
    Queue.objects.create(name="payroll", type="database")
    seen = answers(token_for(publisher(), orders), "payroll", "no-such-queue")
    assert {status for status, _ in seen} == {403}
    assert len({json.dumps(body) for _, body in seen}) == 1
    assert "payroll" not in json.dumps(seen)
    allowed = post(token_for(publisher("other"), orders), "/api/v1/zstorage/queue/a/orders/publish")
    assert allowed.status_code == 201


def test_a_token_for_every_queue_still_learns_that_a_queue_is_missing():
    Queue.objects.create(name="orders", type="database")
    [(status, body), _] = answers(token_for(publisher()), "no-such-queue")
    assert (status, body["code"]) == (404, "queue_not_found")


def test_a_broker_failure_tells_the_publisher_no_host_and_logs_the_details(
    caplog: pytest.LogCaptureFixture,
):
    queue = Queue.objects.create(name="mail", type="rabbitmq", url=f"amqp://{DOWN_HOST}/")
    down = post(token_for(publisher()), f"/api/v1/zstorage/queue/{queue.pk}/publish")
    assert down.status_code == 503
    assert down.json() == {
        "code": "broker_unavailable",
        "detail": "The queue's broker is unavailable; try again later.",
    }
    assert DOWN_HOST in caplog.text, "the details are in the log"
    assert "broker_unavailable" in caplog.text


def test_an_admin_still_reads_why_a_broker_failed():
    queue = Queue.objects.create(name="mail", type="rabbitmq", url=f"amqp://{DOWN_HOST}/")
    root = User.objects.create_user("root")
    root.groups.add(Group.objects.get(name="admins"))
    client = APIClient()
    client.force_authenticate(root)
    check = client.post(f"/api/v1/queues/{queue.pk}/check/")
    assert check.status_code == 503
    assert DOWN_HOST in check.json()["detail"]
