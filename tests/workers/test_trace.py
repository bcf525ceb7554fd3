"""Message traces end to end: a record's version → its outbox message → the engine's id →
each delivery attempt, as the trace API, the record page and the message page show them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.scopes import Scope
from queues.models import MessageTrace, OutboxMessage, Queue
from queues.relay import Relay
from tests.queues.backends.engines import Engine
from tests.queues.helpers import wait_for
from tests.queues.outbox_helpers import linked_table, pending
from workers.events import prune_events
from workers.models import EventKind, LifecycleEvent
from workers.registry import Registry
from zstorage import records
from zstorage.models import TableGrant


def relay_all(queue: Queue) -> None:
    relay = Relay(listen=False)
    try:
        wait_for(lambda: relay.run_once() >= 0 and pending(queue) == 0, 30, "the relay")
    finally:
        relay.close()


def admin_api() -> APIClient:
    client = APIClient()
    client.force_authenticate(User.objects.create_superuser("root", "root@example.com", "pw"))
    return client


def settled(message_id: str, kind: EventKind) -> Any:
    return LifecycleEvent.objects.filter(message_id=message_id, kind=kind).exists()


def broker_search_text(engine: Engine, queue: Queue, trace: dict[str, Any]) -> str:
    """What an admin pastes to find the message by the engine's own id."""
    if engine.type == "kafka":
        return f"{queue.name}:{trace['broker_id']}"  # topic:partition:offset
    return str(trace["broker_id"])


def test_a_record_update_s_trace_shows_outbox_broker_id_and_the_acked_attempt(
    engine: Engine, make_queue: Any, registry: Registry, start_worker: Any, client: Client
) -> None:
    queue = make_queue()
    table = linked_table(queue, handler="trace_ok")

    @registry.handler("trace_ok")
    def trace_ok(message: dict[str, Any], ctx: Any) -> None:
        ctx.log.info("saw version %s", message["version"])
        ctx.ack()

    record = records.create_record(table, {"number": "SO-1"})
    records.update_record(table, record.pk, {"status": "paid"})
    update = OutboxMessage.objects.get(body__version=2)
    relay_all(queue)
    start_worker(queue)
    message_id = str(update.message_id)
    wait_for(lambda: settled(message_id, EventKind.COMPLETE), 30, "the update to be acked")
    wait_for(
        lambda: LifecycleEvent.objects.filter(message_id=message_id, kind=EventKind.LOG).exists(),
        10,
        "the handler's log line",
    )

    api = admin_api()
    answer = api.get(f"/api/v1/zstorage/tables/orders/records/{record.pk}/trace")
    assert answer.status_code == 200, answer.content
    versions = {v["version"]: v for v in answer.json()["versions"]}
    assert set(versions) == {1, 2}
    (trace,) = versions[2]["messages"]
    assert trace["message_id"] == message_id
    assert trace["record"] == {"table": "orders", "id": record.pk, "version": 2}
    assert trace["queue"] == queue.name
    assert trace["state"] == "published"
    assert trace["broker_id"]
    assert trace["published_at"]
    if engine.type == "rabbitmq":
        assert trace["broker_id"] == message_id  # the AMQP message-id is ours
    (attempt,) = trace["attempts"]
    assert attempt["attempt"] == 1
    assert attempt["outcome"] == "acked"
    assert attempt["started_at"]
    assert attempt["ended_at"]
    assert attempt["worker"]
    assert [line["text"] for line in attempt["logs"]] == ["saw version 2"]

    by_id = api.get(f"/api/v1/trace/messages/{message_id}").json()
    assert by_id["broker_id"] == trace["broker_id"]
    assert by_id["outcome"] == "acked"

    client.force_login(User.objects.get(username="root"))
    page = client.get(f"/records/orders/{record.pk}/").content.decode()
    assert "Trace" in page
    assert message_id in page
    assert trace["broker_id"] in page
    found = client.get("/messages/", {"q": broker_search_text(engine, queue, trace)})
    assert found.status_code == 302
    assert found["Location"] == f"/messages/{message_id}/"
    detail = client.get(found["Location"]).content.decode()
    assert "acked" in detail
    assert "saw version 2" in detail


def test_a_message_retried_twice_then_dead_lettered_shows_three_attempts_with_errors(
    transactional_db: None, registry: Registry, start_worker: Any
) -> None:
    queue = Queue.objects.create(
        name="trace-retries", type="database", max_attempts=3, allowed_handlers=["boom"]
    )

    @registry.handler("boom")
    def boom(message: dict[str, Any], ctx: Any) -> None:
        raise ValueError(f"boom on attempt {ctx.attempt}")

    api = admin_api()
    published = api.post(
        f"/api/v1/zstorage/queue/{queue.pk}/publish", {"handler": "boom"}, format="json"
    )
    assert published.status_code == 201, published.content
    message_id = published.json()["message-id"]
    start_worker(queue)
    wait_for(lambda: settled(message_id, EventKind.DEAD_LETTERED), 30, "the dead letter")

    trace = api.get(f"/api/v1/trace/messages/{message_id}").json()
    assert trace["source"] == "api"
    assert trace["broker_id"] == str(published.json()["broker-id"])
    assert [a["attempt"] for a in trace["attempts"]] == [1, 2, 3]
    assert [a["outcome"] for a in trace["attempts"]] == ["retried", "retried", "dead_lettered"]
    for number, attempt in enumerate(trace["attempts"], start=1):
        assert f"boom on attempt {number}" in attempt["error"]
    assert all(a["retry_delay"] is not None for a in trace["attempts"][:2])
    assert trace["outcome"] == "dead_lettered"


@pytest.mark.django_db(transaction=True)
def test_a_business_user_sees_the_traces_of_granted_tables_only(client: Client) -> None:
    queue = Queue.objects.create(name="trace-grants", type="database")
    orders = linked_table(queue)
    secret = linked_table(queue, slug="secrets")
    order = records.create_record(orders, {"number": "SO-1"})
    hidden = records.create_record(secret, {"number": "S-1"})
    relay_all(queue)
    api_message = admin_api().post(
        f"/api/v1/zstorage/queue/{queue.pk}/publish", {"handler": "log"}, format="json"
    )
    order_message = str(MessageTrace.objects.get(table="orders").message_id)
    hidden_message = str(MessageTrace.objects.get(table="secrets").message_id)

    bea = User.objects.create_user("bea")
    group = Group.objects.create(name="sales")
    bea.groups.add(group)
    TableGrant.objects.create(table=orders, group=group, can_view=True)
    api = APIClient()
    api.force_authenticate(bea)

    mine = api.get(f"/api/v1/zstorage/tables/orders/records/{order.pk}/trace").json()
    (message,) = mine["versions"][0]["messages"]
    assert message["message_id"] == order_message
    assert "queue" not in message, "a business user is not told queue names"
    assert api.get(f"/api/v1/trace/messages/{order_message}").status_code == 200
    for url in (
        f"/api/v1/trace/messages/{hidden_message}",
        f"/api/v1/trace/messages/{api_message.json()['message-id']}",
        f"/api/v1/zstorage/tables/secrets/records/{hidden.pk}/trace",
        "/api/v1/trace/messages/not-an-id",
    ):
        answer = api.get(url)
        assert answer.status_code == 404, url
        assert answer.json()["code"] == "not_found", url

    client.force_login(bea)
    assert client.get(f"/messages/{order_message}/").status_code == 200
    assert client.get(f"/messages/{hidden_message}/").status_code == 404
    searched = client.get("/messages/", {"q": hidden_message})
    assert searched.status_code == 200
    assert "No message you may see" in searched.content.decode()
    assert client.get("/messages/", {"q": "x" * 10_000 + ":1:2"}).status_code == 200
    assert client.get("/messages/%00/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_an_admin_token_limited_to_other_queues_sees_none_of_these_messages() -> None:
    queue = Queue.objects.create(name="trace-limited", type="database")
    other = Queue.objects.create(name="trace-other", type="database")
    record = records.create_record(linked_table(queue), {"number": "SO-1"})
    relay_all(queue)
    message_id = str(MessageTrace.objects.get().message_id)
    root = User.objects.create_superuser("root", "root@example.com", "pw")
    token, raw = ApiToken.issue(root, "narrow", scopes=[Scope.READ], all_queues=False)
    token.queues.add(other)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert api.get(f"/api/v1/trace/messages/{message_id}").status_code == 404
    answer = api.get(f"/api/v1/zstorage/tables/orders/records/{record.pk}/trace").json()
    assert answer["versions"][0]["messages"] == []
    token.queues.add(queue)
    assert api.get(f"/api/v1/trace/messages/{message_id}").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_only_a_record_s_own_event_is_traced_to_the_record() -> None:
    queue = Queue.objects.create(name="trace-posing", type="database")
    body = {"handler": "log", "table": "orders", "record_id": 1, "version": 9}
    posing = OutboxMessage.objects.create(queue=queue, ordering_key="job:1", body=body)
    own = OutboxMessage.objects.create(queue=queue, ordering_key="orders:1", body=body)
    relay_all(queue)
    traces = MessageTrace.objects.in_bulk([posing.message_id, own.message_id])
    assert (traces[posing.message_id].table, traces[posing.message_id].record_id) == ("", None)
    mine = traces[own.message_id]
    assert (mine.table, mine.record_id, mine.version) == ("orders", 1, 9)


@pytest.mark.django_db(transaction=True)
def test_traces_are_pruned_with_the_lifecycle_log(settings: Any) -> None:
    settings.QUAYMASTER_LIFECYCLE_RETENTION_DAYS = 1
    queue = Queue.objects.create(name="trace-prune", type="database")
    table = linked_table(queue)
    records.create_record(table, {"number": "SO-1"})
    records.create_record(table, {"number": "SO-2"})
    relay_all(queue)
    old, new = MessageTrace.objects.order_by("published_at")
    MessageTrace.objects.filter(pk=old.pk).update(
        published_at=timezone.now() - dt.timedelta(days=2)
    )
    prune_events()
    assert list(MessageTrace.objects.values_list("pk", flat=True)) == [new.pk]


@pytest.mark.django_db(transaction=True)
def test_capture_off_writes_no_trace(settings: Any) -> None:
    settings.QUAYMASTER_TRACE_MESSAGES = False
    queue = Queue.objects.create(name="trace-off", type="database")
    records.create_record(linked_table(queue), {"number": "SO-1"})
    relay_all(queue)
    assert not MessageTrace.objects.exists()
    assert OutboxMessage.objects.get().broker_ref is not None
