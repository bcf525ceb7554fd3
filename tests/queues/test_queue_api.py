"""Queue administration over the API: CRUD with write-only secrets, check, provision, stats,
test message."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from accounts.models import ApiToken
from jobs.models import JobRun, Schedule
from queues import deletion
from queues.api import publishing
from queues.models import OutboxMessage, OutboxState, Queue, QueueLink
from tests.queues.backends.engines import Engine, unique_name
from zstorage.models import Table

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


def _database_message(queue: Queue) -> None:
    publishing.publish(queue, [{"handler": "log"}])


def _pending_outbox_row(queue: Queue) -> None:
    OutboxMessage.objects.create(queue=queue, body={"handler": "log"})


def _link(queue: Queue) -> None:
    QueueLink.objects.create(table=Table.objects.create(name="T", slug="t"), queue=queue)


def _job_run(queue: Queue) -> None:
    JobRun.objects.create(job="recompute", queue=queue)


def _schedule(queue: Queue) -> None:
    Schedule.objects.create(name="s", action="publish", kind="cron", cron="0 * * * *", queue=queue)


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (_database_message, "database_messages"),
        (_pending_outbox_row, "outbox"),
        (_link, "links"),
        (_job_run, "job_runs"),  # PROTECT: a 500 at commit before
        (_schedule, "schedules"),  # PROTECT too
    ],
)
def test_a_queue_with_rows_pointing_at_it_is_not_deleted(
    admin: APIClient, make: Callable[[Queue], None], kind: str
):
    queue = Queue.objects.create(name="orders", type="database")
    make(queue)

    refused = admin.delete(f"{API}{queue.pk}/")

    assert refused.status_code == 409, refused.content
    body = refused.json()
    assert body["code"] == "queue_in_use"
    assert list(body["fields"]) == [kind]
    assert "orders" in body["detail"]
    assert Queue.objects.filter(pk=queue.pk).exists()
    assert deletion.in_the_way(queue) == {kind: 1}, "nothing was lost"


def test_deleting_a_token_s_last_queue_leaves_the_token_publishing_nowhere(admin: APIClient):
    queue = Queue.objects.create(name="orders", type="database")
    other = Queue.objects.create(name="emails", type="database")
    user = User.objects.create_superuser("publisher")
    token, raw = ApiToken.issue(user, "limited", all_queues=False)
    token.queues.set([queue])

    assert admin.delete(f"{API}{queue.pk}/").status_code == 204

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    refused = client.post(
        f"/api/v1/zstorage/queue/{other.pk}/publish", {"handler": "log"}, format="json"
    )
    assert refused.status_code == 403, "an emptied limit denies; it never widens to all"
    assert other.database_messages.count() == 0


def test_a_queue_is_deleted_once_nothing_but_its_history_points_at_it(admin: APIClient):
    queue = Queue.objects.create(name="orders", type="database")
    _database_message(queue)
    _pending_outbox_row(queue)
    _link(queue)
    refused = admin.delete(f"{API}{queue.pk}/")
    assert refused.status_code == 409
    assert set(refused.json()["fields"]) == {"database_messages", "outbox", "links"}
    assert queue.database_messages.count() == 1

    queue.database_messages.all().delete()
    queue.outbox.update(state=OutboxState.PUBLISHED)  # delivered: history, not a message
    queue.links.all().delete()
    assert admin.delete(f"{API}{queue.pk}/").status_code == 204
    assert not Queue.objects.filter(pk=queue.pk).exists()
    assert not OutboxMessage.objects.exists()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("[]", "application/json"),
        ('"text"', "application/json"),
        ("null", "application/json"),
        ('{"a": {"b": [1, null, 1e999]}}', "application/json"),
        ("{not json", "application/json"),
        ("--x\r\n", "multipart/form-data; boundary=x"),
        ("zzz", "multipart/form-data"),
        ("a=%ZZ&b", "application/x-www-form-urlencoded"),
        (b"\xff\xfe", "text/plain"),
    ],
)
def test_check_and_provision_ignore_whatever_body_is_sent(
    admin: APIClient, body: str | bytes, content_type: str
):
    queue = Queue.objects.create(name="orders", type="database")
    for action, answer in [("check", {"ok": True}), ("provision", {"ok": True})]:
        response = admin.post(f"{API}{queue.pk}/{action}/", body, content_type=content_type)
        assert response.status_code == 200, response.content
        assert answer.items() <= response.json().items()


@pytest.mark.parametrize(
    ("type_", "url"),
    [
        ("rabbitmq", "amqp://127.0.0.1:abc/"),
        ("rabbitmq", "amqp://127.0.0.1:99999/"),
        ("rabbitmq", "amqp://[::1/"),
        ("rabbitmq", "amqp://ex ample/"),
        ("sqs", "http://127.0.0.1:abc"),
        ("sqs", "http://[::1"),
        ("sqs", "http://ex ample"),
    ],
)
def test_a_url_no_client_can_use_is_400_never_500(admin: APIClient, type_: str, url: str):
    """Refused when saved; one stored before that check answers 400 ``bad_configuration``
    on check, provision and stats (a ValueError from the client's URL parsing before)."""
    created = admin.post(API, {"name": "orders", "type": type_, "url": url}, format="json")
    assert created.status_code == 400
    assert list(created.json()["fields"]) == ["url"]

    queue = Queue.objects.create(name="orders", type=type_, url=url)
    for method, action in [("post", "check"), ("post", "provision"), ("get", "stats")]:
        response = getattr(admin, method)(f"{API}{queue.pk}/{action}/")
        assert (response.status_code, response.json()["code"]) == (400, "bad_configuration")


def test_a_paused_queue_shows_why_and_an_admin_resumes_it_over_the_api(admin: APIClient):
    from audit.models import AuditEvent
    from queues import pausing

    queue = Queue.objects.create(name="fragile", type="database", pause_after_failures=3)
    set_it = admin.patch(f"{API}{queue.pk}/", {"pause_after_failures": 5}, format="json")
    assert set_it.status_code == 200, set_it.content
    assert set_it.json()["pause_after_failures"] == 5
    assert set_it.json()["paused_at"] is None
    refused = admin.patch(f"{API}{queue.pk}/", {"pause_after_failures": 0}, format="json")
    assert refused.status_code == 400
    assert "pause_after_failures" in refused.json()["fields"]

    assert pausing.pause(queue.pk, 5, "ValueError: no such customer")
    shown = admin.get(f"{API}{queue.pk}/").json()
    assert shown["paused_at"] is not None
    assert "5 consecutive handler failures" in shown["paused_reason"]
    assert "no such customer" in shown["paused_reason"]
    written = admin.patch(f"{API}{queue.pk}/", {"paused_at": None}, format="json")
    assert written.status_code == 200
    queue.refresh_from_db()
    assert queue.paused_at is not None  # read-only: only resume clears it

    resumed = admin.post(f"{API}{queue.pk}/resume/")
    assert resumed.status_code == 200, resumed.content
    assert resumed.json()["resumed"] is True
    assert resumed.json()["queue"]["paused_at"] is None
    queue.refresh_from_db()
    assert queue.paused_at is None
    assert AuditEvent.objects.filter(action="queue.resume", object_id=str(queue.pk)).count() == 1

    again = admin.post(f"{API}{queue.pk}/resume/")
    assert again.status_code == 200
    assert again.json()["resumed"] is False


def test_only_admins_resume_a_queue(db: None):
    queue = Queue.objects.create(name="fragile", type="database")
    client = APIClient()
    client.force_authenticate(User.objects.create_user("clerk"))
    assert client.post(f"{API}{queue.pk}/resume/").status_code == 403
