"""Fixing dead letters before they go back, from the browser: a warning when their handler is
registered nowhere here, one letter edited in the JSON editor (checked before anything is
sent), many given another handler at once; each copy says who changed it."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from queues import services
from queues.backends import get_backend
from queues.messages import OutgoingMessage
from queues.models import DatabaseMessage, MessageState, Queue
from tests.backoffice.test_pages_queues import logged_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client: Client) -> Client:
    logged_in(client, "ada")
    return client


def dead(queue: Queue, *bodies: dict[str, object]) -> list[str]:
    """Publish ``bodies`` and dead-letter them as a worker would; their message ids."""
    services.publish(queue, [OutgoingMessage.new(body, ordering_key="orders:1") for body in bodies])
    with get_backend(queue) as backend:
        deliveries = backend.fetch(max_messages=len(bodies), wait_seconds=0)
        for delivery in deliveries:
            backend.dead_letter(delivery, "Unknown handler")
    return [d.message_id for d in deliveries]


def waiting(queue: Queue) -> list[dict[str, object]]:
    rows = DatabaseMessage.objects.filter(queue=queue, state=MessageState.READY).order_by("id")
    return [{"body": row.body, "headers": row.headers} for row in rows]


def test_a_typo_d_handler_is_pointed_out_and_fixed_in_the_editor(admin: Client):
    queue = services.create_queue(name="mail", type="database")
    (key,) = dead(queue, {"handler": "sendmail", "to": "a@example.com"})

    listing = admin.get(f"/queues/{queue.pk}/dead-letters/").content.decode()
    assert "unknown handler" in listing
    assert 'id="dead-letter-unknown"' in listing
    page = admin.get(f"/queues/{queue.pk}/dead-letters/{key}/").content.decode()
    assert "No handler named &#x27;sendmail&#x27; is registered here" in page
    assert '<option value="send_email">' in page, "the registered handlers are offered"
    assert 'value="sendmail"' in page

    bad = admin.post(
        f"/queues/{queue.pk}/dead-letters/{key}/edit", {"handler": "send_email", "body": "{nope"}
    )
    assert bad.status_code == 422
    assert "This is not valid JSON" in bad.content.decode()
    assert waiting(queue) == [], "nothing was sent"

    sent = admin.post(
        f"/queues/{queue.pk}/dead-letters/{key}/edit",
        {"handler": "send_email", "body": json.dumps({"to": "b@example.com", "subject": "Hi"})},
        follow=True,
    )
    assert f"Dead letter {key} sent back to mail as edited" in sent.content.decode()
    (copy,) = waiting(queue)
    assert copy["body"] == {"handler": "send_email", "to": "b@example.com", "subject": "Hi"}
    headers = copy["headers"]
    assert isinstance(headers, dict)
    assert headers["edited-by"] == "ada"
    assert headers["edited-from-handler"] == "sendmail"
    assert headers["edited-from-message-id"] == key
    assert not DatabaseMessage.objects.filter(state=MessageState.DEAD).exists()


def test_many_get_another_handler_at_once(admin: Client):
    queue = services.create_queue(name="mail", type="database")
    first, second, third = dead(queue, *({"handler": "sendmail", "n": n} for n in range(3)))

    admin.post(
        f"/queues/{queue.pk}/dead-letters/redrive",
        {"change": "handler", "handler": "send_email", "key": [first, third]},
    )
    assert sorted(c["body"]["n"] for c in waiting(queue)) == [0, 2]  # type: ignore[index]
    assert {c["body"]["handler"] for c in waiting(queue)} == {"send_email"}  # type: ignore[index]
    (left,) = DatabaseMessage.objects.filter(state=MessageState.DEAD)
    assert str(left.message_id) == second

    nothing = admin.post(
        f"/queues/{queue.pk}/dead-letters/redrive",
        {"change": "handler", "handler": "send_email"},
        follow=True,
    )
    assert "Tick the dead letters whose handler to change" in nothing.content.decode()


def test_an_edit_outside_the_queue_s_allowed_handlers_is_refused_on_the_page(admin: Client):
    queue = services.create_queue(name="mail", type="database", allowed_handlers=["send_email"])
    (key,) = dead(queue, {"handler": "send_email", "to": "a@example.com"})
    refused = admin.post(
        f"/queues/{queue.pk}/dead-letters/{key}/edit", {"handler": "webhook", "body": "{}"}
    )
    assert refused.status_code == 422
    assert "does not take messages for handler" in refused.content.decode()
    assert waiting(queue) == []
    assert DatabaseMessage.objects.filter(state=MessageState.DEAD).count() == 1


def test_a_body_that_is_not_an_object_is_shown_and_can_be_replaced(admin: Client):
    queue = services.create_queue(name="raw", type="database")
    services.publish(queue, [OutgoingMessage.new(b"[1, 2, 3]")])
    with get_backend(queue) as backend:
        (delivery,) = backend.fetch(max_messages=1, wait_seconds=0)
        backend.dead_letter(delivery, "Malformed JSON")
    page = admin.get(f"/queues/{queue.pk}/dead-letters/{delivery.message_id}/")
    assert page.status_code == 200
    assert re.search(r"\[\s*1,\s*2,\s*3\s*\]", page.content.decode())
    many = admin.post(
        f"/queues/{queue.pk}/dead-letters/redrive",
        {"change": "handler", "handler": "log", "key": [delivery.message_id]},
        follow=True,
    )
    assert "is not a JSON object" in many.content.decode()
    fixed = admin.post(
        f"/queues/{queue.pk}/dead-letters/{delivery.message_id}/edit",
        {"handler": "log", "body": '{"text": "now it is"}'},
    )
    assert fixed.status_code == 302
    assert [c["body"] for c in waiting(queue)] == [{"handler": "log", "text": "now it is"}]
