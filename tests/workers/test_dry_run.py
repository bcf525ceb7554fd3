"""Dry run on a dead letter: the handler runs once, in a sandbox, and the admin sees what it
would have done — its settlement, the messages it would publish (by ``ctx.publish`` and through
table links), its record writes, its log lines and its error — while the database, the queues
and the dead letter stay as they were. Webhooks and emails are refused before they leave.

Transactional: the handler runs on a thread with a connection of its own, as in the web server.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from rest_framework.test import APIClient

from audit.models import AuditEvent
from queues import services
from queues.backends import get_backend
from queues.dead_letters import find_dead_letter
from queues.messages import OutgoingMessage
from queues.models import DatabaseMessage, OutboxMessage, Queue, QueueLink
from tests.zstorage.builders import make_field, make_table
from workers.context import Context
from workers.dry_run import dry_run
from workers.endpoints import create_endpoint
from workers.locks import DistributedLock
from workers.registry import handler
from zstorage import records
from zstorage.models import Record, RecordChange

pytestmark = pytest.mark.django_db(transaction=True)

logger = logging.getLogger("tests.dry_run")


@handler("tests.dry_run.fulfil")
def fulfil(message: dict[str, Any], ctx: Context) -> None:
    order = ctx.records.search("orders", {"number": message["number"]})[0]
    ctx.records.update("orders", order.pk, {"status": "shipped"})
    ctx.records.create("orders", {"number": "SO-2", "status": "new"})
    ctx.publish("mail", {"handler": "log", "order": message["number"]}, ordering_key="o:1")
    ctx.log.info("shipped %s", message["number"])
    logger.warning("slow carrier for %s", message["number"])
    ctx.ack()


@handler("tests.dry_run.locks_and_fails")
def locks_and_fails(message: dict[str, Any], ctx: Context) -> None:
    ctx.lock("dry-run-test", timeout=1).acquire()  # never released by the handler
    ctx.records.create("orders", {"number": "SO-9", "status": "new"})
    raise ValueError("carrier down")


ENTERED = threading.Event()
GO_ON = threading.Event()
ENDED = threading.Event()


@handler("tests.dry_run.hangs")
def hangs(message: dict[str, Any], ctx: Context) -> None:
    try:
        ctx.records.create("orders", {"number": "SO-7", "status": "new"})
        ENTERED.set()
        GO_ON.wait(10)
        ctx.publish("mail", {"handler": "log"})  # refused: the dry run stopped waiting
    finally:
        ENDED.set()


@handler("tests.dry_run.batch", batch=10)
def batch(messages: list[Any], ctx: Any) -> None:
    ctx.log.info("batch of %d", len(messages))
    ctx.ack_all()


def dead(queue: Queue, body: dict[str, Any]) -> str:
    """Publish ``body`` and dead-letter it as a worker would; its message id."""
    services.publish(queue, [OutgoingMessage.new(body, ordering_key="orders:1")])
    with get_backend(queue) as backend:
        (delivery,) = backend.fetch(max_messages=1, wait_seconds=0)
        backend.dead_letter(delivery, "carrier down")
    return delivery.message_id


def state() -> dict[str, Any]:
    """Everything a dry run must leave as it was: records and their history, the outbox, every
    queue's messages (the dead letter among them)."""
    return {
        "records": list(Record.objects.order_by("id").values("id", "version", "data")),
        "history": RecordChange.objects.count(),
        "outbox": list(OutboxMessage.objects.order_by("id").values_list("id", "state")),
        "messages": list(
            DatabaseMessage.objects.order_by("id").values_list("id", "queue__name", "state")
        ),
    }


@pytest.fixture
def orders() -> Queue:
    """Queue ``orders-in`` (the dead letters), ``mail`` (ctx.publish's target) and ``events``,
    linked to the ``orders`` table (its record writes' events)."""
    table = make_table("orders")
    make_field(table, "number")
    make_field(table, "status")
    records.create_record(table, {"number": "SO-1", "status": "paid"})
    services.create_queue(name="mail", type="database")
    events = services.create_queue(name="events", type="database")
    QueueLink.objects.create(table=table, queue=events, handler="log")
    return services.create_queue(name="orders-in", type="database")


def admin_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_user("ada", is_superuser=True, is_staff=True))
    return client


def test_a_dry_run_shows_what_would_happen_and_changes_nothing(orders: Queue):
    key = dead(orders, {"handler": "tests.dry_run.fulfil", "number": "SO-1"})
    before = state()

    admin = admin_client()
    page = admin.post(f"/queues/{orders.pk}/dead-letters/{key}/dry-run")

    assert page.status_code == 200
    text = page.content.decode()
    assert "Acknowledged: a worker would remove it from the queue." in text
    published = text.split('id="dry-run-published"', 1)[1].split("</ul>", 1)[0]
    assert 'to <code>mail</code> <span class="muted">(ctx.publish, ordering key o:1)' in published
    assert "&quot;order&quot;: &quot;SO-1&quot;" in published
    assert published.count('to <code>events</code> <span class="muted">(table link') == 2
    assert "&quot;event&quot;: &quot;update&quot;" in published
    assert "&quot;event&quot;: &quot;create&quot;" in published
    writes = text.split('id="dry-run-writes"', 1)[1].split("</ul>", 1)[0]
    first = Record.objects.get(data__number="SO-1").pk
    assert f"update <code>orders</code> #{first} (version 2): status" in writes
    assert "create <code>orders</code>" in writes
    assert "INFO ctx.log: shipped SO-1" in text
    assert "WARNING tests.dry_run: slow carrier for SO-1" in text
    assert "Dead letter <code>" in text, "the dead letter is shown, still there"

    clicked = admin.post(
        f"/queues/{orders.pk}/dead-letters/{key}/dry-run",
        headers={"HX-Request": "true", "HX-Target": "dry-run"},
    ).content.decode()
    assert clicked.startswith('<section class="card" id="dry-run"'), "the button's htmx swap"
    assert "Acknowledged: a worker would remove it from the queue." in clicked

    assert state() == before, "no record, history, outbox row or queue message moved"
    assert find_dead_letter(orders, key).message_id == key
    audits = AuditEvent.objects.filter(action="dead_letter.dry_run")
    assert audits.count() == 2, "each dry run is audited"
    audit = audits.first()
    assert audit is not None
    assert audit.actor_name == "ada"
    assert audit.details == {"keys": [key], "message_id": key, "handler": "tests.dry_run.fulfil"}


def test_webhooks_and_emails_are_not_sent_and_the_api_answers_the_same(orders: Queue):
    create_endpoint(name="crm", url="https://crm.example.com/hooks", queues=[orders])
    email = dead(orders, {"handler": "send_email", "to": "a@example.com", "subject": "Hi",
                          "body": "Shipped"})  # fmt: skip
    hook = dead(orders, {"handler": "webhook", "endpoint": "crm", "payload": {"id": 1}})
    unknown = dead(orders, {"handler": "no_such_handler"})
    before = state()
    api = APIClient()
    api.force_authenticate(User.objects.create_user("ada", is_superuser=True, is_staff=True))
    url = f"/api/v1/queues/{orders.pk}/dead-letters/{{}}/dry-run"

    sent = api.post(url.format(email)).json()
    assert sent["not_sent"] == ["email 'Hi' to a@example.com"]
    assert sent["error"] == "SideEffectRefused: Not sent in a dry run: email 'Hi' to a@example.com."
    assert sent["verdict"].startswith("Stopped before an effect a dry run does not perform")
    assert mail.outbox == []
    posted = api.post(url.format(hook)).json()
    assert posted["not_sent"] == ["POST to webhook endpoint 'crm' (https://crm.example.com/hooks)"]
    nowhere = api.post(url.format(unknown)).json()
    assert (nowhere["ran"], nowhere["handler"]) == (False, "no_such_handler")
    assert nowhere["error"].startswith("HandlerNotFound")
    missing = api.post(url.format("0b6c0000-nope"))
    assert (missing.status_code, missing.json()["code"]) == (404, "dead_letter_not_found")

    assert state() == before
    assert len(DatabaseMessage.objects.filter(queue=orders, state="dead")) == 3


def test_an_error_is_shown_and_a_lock_left_taken_is_released(orders: Queue):
    letter = find_dead_letter(
        orders, dead(orders, {"handler": "tests.dry_run.locks_and_fails", "number": "SO-1"})
    )
    before = state()

    result = dry_run(orders, letter)

    assert result.error == "ValueError: carrier down"
    assert "raise ValueError" in result.traceback
    assert result.verdict.startswith("The handler raised: a worker would retry it")
    assert [(w.kind, w.data["number"]) for w in result.record_writes] == [("create", "SO-9")]
    assert state() == before
    with DistributedLock("dry-run-test", timeout=0):  # free again: the dry run let it go
        pass


def test_a_batch_handler_runs_with_a_batch_of_one(orders: Queue):
    letter = find_dead_letter(orders, dead(orders, {"handler": "tests.dry_run.batch"}))

    result = dry_run(orders, letter)

    assert (result.batch, result.settlement) == (True, "ack")
    assert [line.text for line in result.log] == ["batch of 1"]


def test_a_handler_that_overruns_is_left_and_applies_nothing(orders: Queue):
    letter = find_dead_letter(orders, dead(orders, {"handler": "tests.dry_run.hangs"}))
    before = state()

    result = dry_run(orders, letter, seconds=0.5)
    assert ENTERED.is_set()
    GO_ON.set()
    assert ENDED.wait(10)

    assert result.timed_out
    assert result.verdict.startswith("Still running after 0.5 s")
    assert json.dumps(result.as_dict())  # the API's answer
    assert state() == before
