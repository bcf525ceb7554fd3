"""A queue's per-key order option (``Queue.ordered_by_key``, run by ``workers.ordering``): on
by default where a table link feeds the queue, set on the queue page and over the API, and
refused where the engine cannot keep it (an SQS standard queue)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from rest_framework.test import APIClient

from queues import services
from queues.models import Queue, QueueLink
from zstorage.models import Table

pytestmark = pytest.mark.django_db
API = "/api/v1/queues/"


def admin_user() -> User:
    user = User.objects.create_user("root")
    user.groups.add(Group.objects.get(name="admins"))
    return user


def test_blank_means_on_exactly_when_a_table_link_feeds_the_queue() -> None:
    queue = services.create_queue(name="events", type="database")
    assert queue.ordered_by_key is None
    assert not queue.orders_by_key()
    QueueLink.objects.create(table=Table.objects.create(name="T", slug="t"), queue=queue)
    assert queue.orders_by_key()
    queue.ordered_by_key = False
    assert not queue.orders_by_key(), "an explicit choice wins over the link"


def test_the_api_sets_and_clears_it_and_refuses_it_on_an_sqs_standard_queue() -> None:
    client = APIClient()
    client.force_authenticate(admin_user())
    queue = services.create_queue(name="events", type="database")
    assert client.get(f"{API}{queue.pk}/").json()["ordered_by_key"] is None
    on = client.patch(f"{API}{queue.pk}/", {"ordered_by_key": True}, format="json")
    assert on.status_code == 200
    assert on.json()["ordered_by_key"] is True
    blank = client.patch(f"{API}{queue.pk}/", {"ordered_by_key": None}, format="json")
    assert blank.status_code == 200
    assert blank.json()["ordered_by_key"] is None
    bad = client.patch(f"{API}{queue.pk}/", {"ordered_by_key": "sometimes"}, format="json")
    assert bad.status_code == 400
    assert "ordered_by_key" in bad.json()["fields"]

    standard = {"name": "mail", "type": "sqs", "region": "eu-west-1", "ordered_by_key": True}
    refused = client.post(API, standard, format="json")
    assert refused.status_code == 400
    assert "FIFO" in refused.json()["fields"]["ordered_by_key"][0]
    fifo = {**standard, "name": "mail.fifo", "fifo": True}
    assert client.post(API, fifo, format="json").status_code == 201


def test_the_queue_page_offers_default_on_and_off(client: Client) -> None:
    client.force_login(admin_user())
    page = client.get("/queues/new").content.decode()
    assert "Default: on when a table link feeds the queue" in page
    form = {"name": "events", "type": "database", "visibility_timeout": 30, "max_attempts": 5}
    assert client.post("/queues/new", {**form, "ordered_by_key": "False"}).status_code == 302
    assert Queue.objects.get(name="events").ordered_by_key is False
    form["name"] = "jobs"
    assert client.post("/queues/new", form).status_code == 302
    assert Queue.objects.get(name="jobs").ordered_by_key is None
    form["name"] = "mail"
    standard = {**form, "type": "sqs", "region": "eu-west-1", "ordered_by_key": "True"}
    response = client.post("/queues/new", standard)
    assert response.status_code == 422
    assert "per-key order needs a FIFO queue" in response.content.decode()
