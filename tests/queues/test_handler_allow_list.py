"""A queue's allow-list of handlers: a publisher cannot aim a message at a handler the queue's
admins did not allow — not through the publish API, a batch, a test message or a table link."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ApiToken
from queues import services
from queues.models import Queue, QueueLink
from tests.zstorage.builders import contacts_table

pytestmark = pytest.mark.django_db


@pytest.fixture
def orders() -> Queue:
    return services.create_queue(
        name="orders", type="database", allowed_handlers=["sync_order", "log"]
    )


@pytest.fixture
def api() -> APIClient:
    _, raw = ApiToken.issue(User.objects.create_superuser("ops"), "sync")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_the_publish_api_refuses_a_handler_the_queue_does_not_allow(api: APIClient, orders: Queue):
    by_id = f"/api/v1/zstorage/queue/{orders.pk}/publish"
    refused = api.post(by_id, {"handler": "webhook", "endpoint": "x"}, format="json")
    assert refused.status_code == 403
    assert refused.json()["code"] == "handler_not_allowed"
    assert "'webhook'" in refused.json()["detail"]
    by_name = api.post(
        "/api/v1/zstorage/queue/a/orders/publish", {"handler": "send_email"}, format="json"
    )
    assert by_name.status_code == 403
    assert orders.database_messages.count() == 0

    assert api.post(by_id, {"handler": "sync_order"}, format="json").status_code == 201
    assert orders.database_messages.count() == 1


def test_one_refused_handler_refuses_the_whole_batch(api: APIClient, orders: Queue):
    messages = [{"handler": "sync_order"}, {"handler": "log"}, {"handler": "webhook"}]
    refused = api.post(
        f"/api/v1/zstorage/queue/{orders.pk}/publish/batch", {"messages": messages}, format="json"
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "handler_not_allowed"
    assert orders.database_messages.count() == 0


def test_a_queue_without_a_list_takes_any_registered_handler(api: APIClient):
    open_queue = services.create_queue(name="open", type="database")
    url = f"/api/v1/zstorage/queue/{open_queue.pk}/publish"
    assert api.post(url, {"handler": "send_email"}, format="json").status_code == 201
    assert api.post(url, {"handler": "webhook"}, format="json").status_code == 201


def test_a_handler_registered_nowhere_is_refused_where_it_is_named(api: APIClient):
    """A typo would otherwise be accepted and dead-lettered later by the worker."""
    open_queue = services.create_queue(name="open", type="database")
    url = f"/api/v1/zstorage/queue/{open_queue.pk}/publish"
    refused = api.post(url, {"handler": "sendmail"}, format="json")
    assert refused.status_code == 400
    assert refused.json()["code"] == "unknown_handler"
    assert refused.json()["path"] == "handler"
    assert "No handler named 'sendmail' is registered here" in refused.json()["detail"]
    batch = api.post(
        url + "/batch",
        {"messages": [{"handler": "log"}, {"handler": "sendmail"}]},
        format="json",
    )
    assert batch.status_code == 400
    assert batch.json()["path"] == "messages[1].handler"
    assert open_queue.database_messages.count() == 0


def test_a_handler_of_workers_elsewhere_passes_when_the_queue_names_it(api: APIClient):
    remote = services.create_queue(name="crm", type="database", allowed_handlers=["crm.sync"])
    url = f"/api/v1/zstorage/queue/{remote.pk}/publish"
    assert api.post(url, {"handler": "crm.sync"}, format="json").status_code == 201
    assert remote.database_messages.count() == 1


@pytest.mark.parametrize("reserved", ["start_job", "jobs.instance"])
def test_a_publisher_cannot_start_jobs_unless_a_queue_names_the_handler(
    api: APIClient, reserved: str
):
    """Jobs are for admins: publishing {"handler": "start_job"} would start one with the
    publisher's parameters, so these handlers are kept from publishers by default."""
    open_queue = services.create_queue(name="open", type="database")
    url = f"/api/v1/zstorage/queue/{open_queue.pk}/publish"
    message = {"handler": reserved, "job": "echo", "params": [{}]}
    refused = api.post(url, message, format="json")
    assert refused.status_code == 403
    assert refused.json()["code"] == "handler_not_allowed"
    assert "may name it only on a queue whose allowed handlers list it" in refused.json()["detail"]
    batch = api.post(url + "/batch", {"messages": [{"handler": "log"}, message]}, format="json")
    assert batch.status_code == 403
    assert open_queue.database_messages.count() == 0

    services.update_queue(open_queue, allowed_handlers=[reserved])
    assert api.post(url, message, format="json").status_code == 201


def test_the_test_message_endpoint_respects_the_list(api: APIClient, orders: Queue):
    refused = api.post(
        f"/api/v1/queues/{orders.pk}/test-message/", {"handler": "webhook"}, format="json"
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "handler_not_allowed"
    assert orders.database_messages.count() == 0


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ([], "empty list would refuse every message"),
        (["log", 7], "list of handler names"),
        ("log", "list of handler names"),
        (["log", "log"], "listed twice"),
        (["bad\nname"], "Not a handler name"),
        (["x" * 201], "Not a handler name"),
    ],
)
def test_a_bad_list_is_a_field_error(api: APIClient, orders: Queue, value: Any, problem: str):
    answer = api.patch(f"/api/v1/queues/{orders.pk}/", {"allowed_handlers": value}, format="json")
    assert answer.status_code == 400
    assert problem in " ".join(answer.json()["fields"]["allowed_handlers"])
    orders.refresh_from_db()
    assert orders.allowed_handlers == ["sync_order", "log"]


def test_the_api_sets_and_clears_the_list(api: APIClient, orders: Queue):
    answer = api.patch(f"/api/v1/queues/{orders.pk}/", {"allowed_handlers": None}, format="json")
    assert answer.status_code == 200
    assert answer.json()["allowed_handlers"] is None
    orders.refresh_from_db()
    assert orders.allows_handler("webhook")


def test_a_link_for_a_handler_the_queue_refuses_is_not_saved(orders: Queue):
    table = contacts_table()
    with pytest.raises(ValidationError) as refused:
        services.save_link(QueueLink(table=table, queue=orders, handler="webhook"))
    assert "handler" in refused.value.message_dict
    assert not QueueLink.objects.exists()
    services.save_link(QueueLink(table=table, queue=orders, handler="sync_order"))
    assert QueueLink.objects.count() == 1


def test_the_back_office_edits_the_list_and_refuses_a_test_message_outside_it(
    client: Client, orders: Queue
):
    user = User.objects.create_user("root")
    user.groups.add(Group.objects.get(name="admins"))
    client.force_login(user)

    page = client.get(f"/queues/{orders.pk}/").content.decode()
    assert 'value="sync_order, log"' in page
    refused = client.post(f"/queues/{orders.pk}/test-message", {"handler": "webhook"})
    assert refused.status_code == 422
    assert "allows only these handlers: sync_order, log" in refused.content.decode()
    assert orders.database_messages.count() == 0

    form = {
        "name": "orders",
        "type": "database",
        "visibility_timeout": 30,
        "max_attempts": 5,
        "enabled": "on",
        "allowed_handlers": " sync_order ,webhook, ",
    }
    assert client.post(f"/queues/{orders.pk}/", form).status_code == 302
    orders.refresh_from_db()
    assert orders.allowed_handlers == ["sync_order", "webhook"]
    assert client.post(f"/queues/{orders.pk}/", {**form, "allowed_handlers": ""}).status_code == 302
    orders.refresh_from_db()
    assert orders.allowed_handlers is None
