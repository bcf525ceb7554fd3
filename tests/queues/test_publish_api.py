"""The publish API over each real engine: what an external system sees, and what the broker
really holds afterwards (read back with the engine's own client)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken
from queues.api import publishing
from queues.api.errors import IdempotencyInProgress
from queues.backends import get_backend
from queues.models import IdempotencyKey, Queue
from queues.services import publishers
from tests.queues.backends.engines import Engine, unique_name

BROKER_KEY = {
    "sqs": "sqs-id",
    "kafka": "kafka-offset",
    "rabbitmq": "broker-id",
    "database": "broker-id",
}


@pytest.fixture(autouse=True)
def _close_publishers() -> Any:
    """Each test starts without the backends an earlier one left in the process cache."""
    publishers.close()
    yield
    publishers.close()


def publisher(*queues: Queue, name: str = "publisher") -> tuple[User, str]:
    """A user allowed to publish, and a token limited to ``queues`` (all queues if none)."""
    user = User.objects.create_user(name)
    group = Group.objects.create(name=f"{name} group")
    group.permissions.add(Permission.objects.get(codename="publish_queue"))
    user.groups.add(group)
    token, raw = ApiToken.issue(user, "test", all_queues=not queues)
    token.queues.set(queues)
    return user, raw


def client_for(raw: str | None) -> APIClient:
    client = APIClient()
    if raw:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def post(client: APIClient, url: str, body: Any, **headers: str) -> Any:
    return client.post(url, json.dumps(body), content_type="application/json", **headers)


def test_publish_by_id_and_by_name_reaches_the_broker(engine: Engine, queue: Queue):
    _, raw = publisher(queue)
    client = client_for(raw)

    by_id = post(
        client,
        f"/api/v1/zstorage/queue/{queue.pk}/publish",
        {"handler": "send_email", "to": "a@b.c"},
    )
    by_name = post(
        client, f"/api/v1/zstorage/queue/a/{queue.name}/publish", {"handler": "log", "n": 2}
    )

    assert by_id.status_code == 201, by_id.content
    assert by_name.status_code == 201, by_name.content
    for answer in (by_id.json(), by_name.json()):
        assert set(answer) == {"message-id", "queue-id", BROKER_KEY[engine.type]}
        assert answer["queue-id"] == queue.pk
    if engine.type == "kafka":
        assert set(by_id.json()["kafka-offset"]) == {"partition", "offset"}

    held = {r.message_id: json.loads(r.body) for r in engine.read_back(queue, 2)}
    assert held[by_id.json()["message-id"]] == {"handler": "send_email", "to": "a@b.c"}
    assert len(publishers) == 1, "both requests used the one backend the process keeps"
    assert held[by_name.json()["message-id"]] == {"handler": "log", "n": 2}


def test_batch_publish_answers_per_message_in_order(engine: Engine, queue: Queue):
    _, raw = publisher(queue)
    messages = [{"handler": "log", "n": i} for i in range(3)]
    response = post(
        client_for(raw),
        f"/api/v1/zstorage/queue/a/{queue.name}/publish/batch",
        {"messages": messages},
    )

    assert response.status_code == 201, response.content
    results = response.json()["results"]
    assert len(results) == 3
    held = {r.message_id: json.loads(r.body) for r in engine.read_back(queue, 3)}
    assert [held[r["message-id"]]["n"] for r in results] == [0, 1, 2]


def test_an_idempotency_key_publishes_once(engine: Engine, queue: Queue):
    _, raw = publisher(queue)
    client = client_for(raw)
    url = f"/api/v1/zstorage/queue/{queue.pk}/publish"

    first = post(client, url, {"handler": "log"}, HTTP_IDEMPOTENCY_KEY="order-42")
    again = post(client, url, {"handler": "log"}, HTTP_IDEMPOTENCY_KEY="order-42")

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    later = post(client, url, {"handler": "log", "later": True})
    held = {r.message_id for r in engine.read_back(queue, 2)}
    assert held == {first.json()["message-id"], later.json()["message-id"]}


@pytest.mark.django_db
def test_every_request_is_authenticated_and_tokens_are_scoped():
    orders = Queue.objects.create(name="orders", type="database")
    emails = Queue.objects.create(name="emails", type="database")
    _, raw = publisher(orders)
    url = "/api/v1/zstorage/queue/a/{}/publish"

    assert post(client_for(None), url.format("orders"), {"handler": "log"}).status_code == 401
    assert post(client_for("qm_wrong"), url.format("orders"), {"handler": "log"}).status_code == 401
    other = post(client_for(raw), url.format("emails"), {"handler": "log"})
    assert other.status_code == 403
    assert other.json()["code"] == "permission_denied"
    assert post(client_for(raw), url.format("orders"), {"handler": "log"}).status_code == 201

    no_permission = User.objects.create_user("reader")
    _, reader = ApiToken.issue(no_permission, "read only")
    assert post(client_for(reader), url.format("orders"), {"handler": "log"}).status_code == 403
    assert emails.database_messages.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ([1, 2], 400, "not_an_object"),
        ("text", 400, "not_an_object"),
        ({"to": "a@b.c"}, 400, "missing_handler"),
        ({"handler": ""}, 400, "missing_handler"),
        ({"handler": 7}, 400, "missing_handler"),
        ({"handler": "log", "blob": "x" * (1024 * 1024 + 1)}, 413, "message_too_large"),
    ],
)
def test_bad_messages_get_stable_codes_and_publish_nothing(body: Any, status: int, code: str):
    queue = Queue.objects.create(name="orders", type="database")
    _, raw = publisher(queue)
    response = post(client_for(raw), f"/api/v1/zstorage/queue/{queue.pk}/publish", body)
    assert response.status_code == status
    assert response.json()["code"] == code
    assert queue.database_messages.count() == 0


@pytest.mark.django_db
def test_unknown_and_disabled_queues():
    _, raw = publisher()
    client = client_for(raw)
    missing = post(client, "/api/v1/zstorage/queue/a/nowhere/publish", {"handler": "log"})
    assert (missing.status_code, missing.json()["code"]) == (404, "queue_not_found")
    assert (
        post(client, "/api/v1/zstorage/queue/999999/publish", {"handler": "log"}).status_code == 404
    )

    Queue.objects.create(name="paused", type="database", enabled=False)
    paused = post(client, "/api/v1/zstorage/queue/a/paused/publish", {"handler": "log"})
    assert (paused.status_code, paused.json()["code"]) == (409, "queue_disabled")


@pytest.mark.django_db
def test_a_batch_with_one_bad_message_publishes_nothing():
    queue = Queue.objects.create(name="orders", type="database")
    _, raw = publisher(queue)
    body = {"messages": [{"handler": "log"}, {"nohandler": 1}, {"handler": "log"}]}
    response = post(client_for(raw), f"/api/v1/zstorage/queue/{queue.pk}/publish/batch", body)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_batch"
    assert list(response.json()["fields"]) == ["1"]
    assert queue.database_messages.count() == 0


@pytest.mark.e2e
@pytest.mark.django_db
def test_an_unreachable_broker_answers_503_and_a_retry_with_the_key_publishes(broker: Engine):
    queue = Queue.objects.create(
        name=unique_name(broker.type), type=broker.type, url=broker.unreachable_url or ""
    )
    _, raw = publisher(queue)
    client = client_for(raw)
    url = f"/api/v1/zstorage/queue/{queue.pk}/publish"

    down = post(client, url, {"handler": "log"}, HTTP_IDEMPOTENCY_KEY="k1")
    assert (down.status_code, down.json()["code"]) == (503, "broker_unavailable")

    queue.url = broker.url()
    queue.save()
    with get_backend(queue) as backend:
        backend.provision()
    up = post(client, url, {"handler": "log"}, HTTP_IDEMPOTENCY_KEY="k1")
    assert up.status_code == 201, up.content
    assert [r.message_id for r in broker.read_back(queue, 1)] == [up.json()["message-id"]]
    broker.created.append(queue)
    broker.cleanup()


@pytest.mark.e2e
@pytest.mark.django_db
def test_an_edited_queue_is_published_with_its_new_settings(broker: Engine):
    """The process keeps a backend per queue; editing the queue must not leave the old one
    in use: pointed at a closed port the next publish fails, pointed back it succeeds."""
    queue = broker.make_queue()
    with get_backend(queue) as backend:
        backend.provision()
    _, raw = publisher(queue)
    client = client_for(raw)
    url = f"/api/v1/zstorage/queue/{queue.pk}/publish"

    before = post(client, url, {"handler": "log", "n": 1})
    assert before.status_code == 201, before.content

    queue.url = broker.unreachable_url or ""
    queue.save()
    down = post(client, url, {"handler": "log", "n": 2})
    assert (down.status_code, down.json()["code"]) == (503, "broker_unavailable")

    queue.url = broker.url()
    queue.save()
    after = post(client, url, {"handler": "log", "n": 3})
    assert after.status_code == 201, after.content

    held = {r.message_id: json.loads(r.body)["n"] for r in broker.read_back(queue, 2)}
    assert held == {before.json()["message-id"]: 1, after.json()["message-id"]: 3}
    broker.cleanup()


@pytest.mark.django_db
def test_requests_are_rate_limited_per_token(monkeypatch: pytest.MonkeyPatch):
    from django.core.cache import cache

    from accounts.throttling import TokenRateThrottle

    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", {"token": "3/min"})
    cache.clear()
    queue = Queue.objects.create(name="orders", type="database")
    _, first = publisher(queue, name="first")
    _, second = publisher(queue, name="second")
    url = f"/api/v1/zstorage/queue/{queue.pk}/publish"

    codes = [post(client_for(first), url, {"handler": "log"}).status_code for _ in range(4)]
    limited = post(client_for(first), url, {"handler": "log"})

    assert codes == [201, 201, 201, 429]
    assert limited.json()["code"] == "throttled"
    assert post(client_for(second), url, {"handler": "log"}).status_code == 201
    assert queue.database_messages.count() == 4
    cache.clear()


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["k" * 256, "k" * 10_000, "order\x0042", "order\n42"])
def test_an_idempotency_key_too_long_or_with_control_characters_is_400(key: str):
    """Longer than its column: a 500 on PostgreSQL before; NUL cannot be stored at all."""
    queue = Queue.objects.create(name="orders", type="database")
    user, raw = publisher(queue)
    url = f"/api/v1/zstorage/queue/{queue.pk}/publish"

    refused = post(client_for(raw), url, {"handler": "log"}, HTTP_IDEMPOTENCY_KEY=key)

    assert refused.status_code == 400, refused.content
    assert refused.json()["code"] == "invalid_idempotency_key"
    assert queue.database_messages.count() == 0
    assert not IdempotencyKey.objects.filter(user=user).exists()
    longest = post(client_for(raw), url, {"handler": "log"}, HTTP_IDEMPOTENCY_KEY="k" * 255)
    assert longest.status_code == 201, longest.content


class Killed(BaseException):
    """What the request sees of its worker being killed: nothing runs after it."""


@pytest.mark.django_db
def test_a_request_killed_mid_publish_leaves_its_key_claimed_only_for_a_while(
    monkeypatch: pytest.MonkeyPatch, settings: Any
):
    settings.QUAYMASTER_IDEMPOTENCY_CLAIM_SECONDS = 60
    queue = Queue.objects.create(name="orders", type="database")
    user, raw = publisher(queue)
    client = client_for(raw)
    url = f"/api/v1/zstorage/queue/{queue.pk}/publish"

    def killed(*args: Any) -> Any:
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(publishing, "publish", killed)
        with pytest.raises(Killed):
            post(client, url, {"handler": "log"}, HTTP_IDEMPOTENCY_KEY="order-42")
    claim = IdempotencyKey.objects.get(user=user, key="order-42")
    assert claim.response is None

    running = post(client, url, {"handler": "log"}, HTTP_IDEMPOTENCY_KEY="order-42")
    assert (running.status_code, running.json()["code"]) == (409, "idempotency_in_progress")

    claim.created_at = timezone.now() - timedelta(seconds=61)
    claim.save()
    retried = post(client, url, {"handler": "log"}, HTTP_IDEMPOTENCY_KEY="order-42")
    assert retried.status_code == 201, retried.content
    replayed = post(client, url, {"handler": "log"}, HTTP_IDEMPOTENCY_KEY="order-42")
    assert replayed.status_code == 201
    assert replayed["Idempotent-Replayed"] == "true"
    assert replayed.json() == retried.json()
    assert [m.message_id for m in queue.database_messages.all()] == [
        uuid.UUID(retried.json()["message-id"])
    ]


@pytest.mark.django_db
def test_an_abandoned_claim_is_taken_over_by_one_repeat_only():
    queue = Queue.objects.create(name="orders", type="database")
    user, _ = publisher(queue)
    IdempotencyKey.objects.create(user=user, key="order-42", queue=queue)
    IdempotencyKey.objects.filter(user=user).update(
        created_at=timezone.now() - timedelta(minutes=5)
    )
    claim = IdempotencyKey.objects.get(user=user)

    assert publishing.remembered(user, "order-42", queue) is None  # taken over
    with pytest.raises(IdempotencyInProgress):
        publishing.remembered(user, "order-42", queue)  # now young again: still running
    assert publishing._take_over(claim, timezone.now()) is False  # a racing repeat lost


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body", [{"handler": "log", "note": "a\x00b"}, {"handler": "log", "data": {"k\x00": [1]}}]
)
def test_a_nul_character_is_refused_by_a_database_queue_not_a_503(body: Any):
    """PostgreSQL's jsonb cannot store it: a permanent 400, not a retryable 503."""
    queue = Queue.objects.create(name="orders", type="database")
    _, raw = publisher(queue)
    response = post(client_for(raw), f"/api/v1/zstorage/queue/{queue.pk}/publish", body)
    assert (response.status_code, response.json()["code"]) == (400, "bad_message")
    assert queue.database_messages.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("handler=log&to=a%40b.c", "application/x-www-form-urlencoded"),
        ('--x\r\nContent-Disposition: form-data; name="handler"\r\n\r\nlog\r\n--x--\r\n',
         "multipart/form-data; boundary=x"),
        ('{"handler": "log"}', "text/plain"),
    ],
)  # fmt: skip
def test_a_body_that_is_not_json_is_415_and_says_so(body: str, content_type: str):
    """Not read as form fields that then lack what the sender meant (a 'missing_handler')."""
    queue = Queue.objects.create(name="orders", type="database")
    _, raw = publisher(queue)
    answer = client_for(raw).post(
        f"/api/v1/zstorage/queue/{queue.pk}/publish", body, content_type=content_type
    )
    assert answer.status_code == 415
    assert answer.json()["code"] == "unsupported_media_type"
    detail = answer.json()["detail"]
    assert "The API reads JSON only: send the body with 'Content-Type: application/json'" in detail
    assert repr(content_type.split(";")[0]) in detail
    assert queue.database_messages.count() == 0
