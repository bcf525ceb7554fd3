"""The built-in handlers: send_email, webhook (against a local HTTP server), log.

What a publisher may choose is the message; what they may not (the sender, a webhook's URL,
secret and timeout) is refused, not ignored. The receiver runs on 127.0.0.1, which webhooks may
reach only because these tests allow it (``QUAYMASTER_WEBHOOK_ALLOWED_NETWORKS``); the attacks
on the address filter are in test_webhook_attacks.py."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.core import mail

from queues import services
from queues.messages import Delivery
from queues.models import Queue
from tests.workers.webhook_receiver import Receiver, serve
from workers.context import Context
from workers.endpoints import SIGNATURE_HEADER, create_endpoint, sign
from workers.errors import MalformedMessage, WebhookFailed
from workers.events import Event, EventSink
from workers.handlers import log as log_handler
from workers.handlers import send_email, webhook
from workers.job import Outcome
from workers.models import WebhookEndpoint

SECRET = "s3cret-signing-key"


class Collect(EventSink):
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


def make_ctx(queue: Queue | None = None, events: EventSink | None = None) -> Context:
    delivery = Delivery(str(uuid.uuid4()), b"{}", 1, {}, None)
    return Context(
        queue=queue or Queue(name="hooks"), delivery=delivery, handler="h", events=events
    )


# -- send_email ----------------------------------------------------------------------------------


def mail_to(**message: Any) -> dict[str, Any]:
    return {"handler": "send_email", "subject": "Hi", "body": "Hello", **message}


def test_send_email_sends_from_the_configured_sender(settings: Any) -> None:
    settings.DEFAULT_FROM_EMAIL = "ops@quaymaster.test"
    ctx = make_ctx()
    send_email(mail_to(to="ada@example.com", cc=["bob@example.com"], bcc="eve@example.com"), ctx)
    assert ctx.outcome == Outcome.ack()
    (sent,) = mail.outbox
    assert sent.from_email == "ops@quaymaster.test"
    assert (sent.to, sent.cc, sent.bcc) == (
        ["ada@example.com"],
        ["bob@example.com"],
        ["eve@example.com"],
    )
    assert (sent.subject, sent.body) == ("Hi", "Hello")
    assert "Reply-To" not in sent.message()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("from_email", "ceo@example.com"),
        ("reply_to", ["attacker@evil.example"]),
        ("sender", "billing@example.com"),
    ],
)
def test_send_email_refuses_a_message_that_picks_its_sender(key: str, value: Any) -> None:
    ctx = make_ctx()
    with pytest.raises(MalformedMessage, match="sender is configured by the platform"):
        send_email(mail_to(to="ada@example.com", **{key: value}), ctx)
    assert not mail.outbox
    assert ctx.outcome is None


def test_send_email_caps_the_recipients_of_one_message(settings: Any) -> None:
    settings.QUAYMASTER_EMAIL_MAX_RECIPIENTS = 3
    too_many = mail_to(to=["a@example.com", "b@example.com"], cc="c@example.com", bcc="d@x.org")
    with pytest.raises(MalformedMessage, match=r"4 recipients.*at most 3"):
        send_email(too_many, make_ctx())
    assert not mail.outbox

    send_email(mail_to(to=["a@example.com", "b@example.com"], cc="c@example.com"), make_ctx())
    (sent,) = mail.outbox
    assert sent.recipients() == ["a@example.com", "b@example.com", "c@example.com"]


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"subject": "Hi", "body": "x"}, "'to'"),
        ({"to": "ada@example.com", "body": "x"}, "'subject'"),
        ({"to": "ada@example.com", "subject": "Hi"}, "'body'"),
        ({"to": ["not-an-address"], "subject": "Hi", "body": "x"}, "not an email address"),
        ({"to": [], "subject": "Hi", "body": "x"}, "'to'"),
        ({"to": "a@example.com, b@example.com", "subject": "Hi", "body": "x"}, "not an email"),
        ({"to": "a@example.com\nBcc: b@example.com", "subject": "Hi", "body": "x"}, "not an"),
        ({"to": "a@example.com", "cc": [42], "subject": "Hi", "body": "x"}, "'cc'"),
        ({"to": "a@example.com", "bcc": {"x": 1}, "subject": "Hi", "body": "x"}, "'bcc'"),
        ({"to": "a@example.com", "subject": "Hi\nBcc: b@example.com", "body": "x"}, "one line"),
        ({"to": "a@example.com", "subject": "Hi\r", "body": "x"}, "one line"),
    ],
)
def test_send_email_refuses_a_message_it_cannot_send(message: dict[str, Any], error: str) -> None:
    with pytest.raises(MalformedMessage, match=error):
        send_email({"handler": "send_email", **message}, make_ctx())
    assert not mail.outbox


# -- webhook -------------------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serve() as received:
        yield received


@pytest.fixture
def hooks(db: None) -> Queue:
    return services.create_queue(name="hooks", type="database")


@pytest.fixture
def loopback_allowed(settings: Any) -> None:
    settings.QUAYMASTER_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]


def endpoint(receiver: Receiver, *queues: Queue, **fields: Any) -> WebhookEndpoint:
    fields = {"name": "crm", "url": receiver.url, "secret": SECRET, **fields}
    return create_endpoint(queues=queues, **fields)


@pytest.mark.usefixtures("loopback_allowed")
def test_webhook_posts_the_payload_signed_with_the_endpoints_secret(
    receiver: Receiver, hooks: Queue
) -> None:
    endpoint(receiver, hooks)
    ctx = make_ctx(hooks)
    payload = {"order": 42, "lines": [1, 2]}
    webhook({"handler": "webhook", "endpoint": "crm", "payload": payload}, ctx)

    assert ctx.outcome == Outcome.ack()
    ((headers, body),) = receiver.requests
    assert json.loads(body) == payload
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] == expected == sign(SECRET, body)
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Quaymaster-Message-Id"] == ctx.message_id
    assert headers["Host"] == receiver.url.split("/")[2], "the Host header is the URL's"


@pytest.mark.usefixtures("loopback_allowed")
def test_a_webhook_without_a_secret_is_sent_unsigned_and_the_only_endpoint_needs_no_name(
    receiver: Receiver, hooks: Queue
) -> None:
    endpoint(receiver, hooks, secret="")
    webhook({"handler": "webhook", "payload": {"n": 1}}, make_ctx(hooks))
    ((headers, body),) = receiver.requests
    assert json.loads(body) == {"n": 1}
    assert SIGNATURE_HEADER not in headers


@pytest.mark.usefixtures("loopback_allowed")
def test_a_queue_with_several_endpoints_needs_the_message_to_name_one(
    receiver: Receiver, hooks: Queue
) -> None:
    endpoint(receiver, hooks, name="crm")
    endpoint(receiver, hooks, name="erp")
    with pytest.raises(MalformedMessage, match=r"must name its 'endpoint'.*crm, erp"):
        webhook({"handler": "webhook", "payload": {}}, make_ctx(hooks))
    webhook({"handler": "webhook", "endpoint": "erp", "payload": {}}, make_ctx(hooks))
    assert len(receiver.requests) == 1


@pytest.mark.usefixtures("loopback_allowed")
@pytest.mark.parametrize("status", [500, 404, 302])
def test_webhook_raises_on_anything_but_2xx_so_the_message_is_retried(
    receiver: Receiver, hooks: Queue, status: int
) -> None:
    receiver.status = status
    endpoint(receiver, hooks)
    ctx = make_ctx(hooks)
    with pytest.raises(WebhookFailed, match=str(status)):
        webhook({"handler": "webhook", "endpoint": "crm", "payload": {}}, ctx)
    assert ctx.outcome is None
    assert len(receiver.requests) == 1, "a redirect is not followed"


@pytest.mark.usefixtures("loopback_allowed")
def test_webhook_without_an_answer_is_retried(hooks: Queue) -> None:
    create_endpoint(name="down", url="http://127.0.0.1:1/", timeout=2, queues=[hooks])
    with pytest.raises(WebhookFailed, match="no answer"):
        webhook({"handler": "webhook", "endpoint": "down"}, make_ctx(hooks))


@pytest.mark.usefixtures("loopback_allowed")
@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"url": "http://127.0.0.1:1/"}, "carries 'url'.*belong to its endpoint"),
        ({"secret_name": "crm"}, "carries 'secret_name'"),
        ({"timeout": 60}, "carries 'timeout'"),
        ({"endpoint": "nowhere"}, "No webhook endpoint is named 'nowhere'.*Webhooks page"),
        ({"endpoint": 7}, "'endpoint' must be the name"),
        ({"endpoint": "off"}, "'off' is disabled"),
        ({"endpoint": "elsewhere"}, "'elsewhere' does not take messages from queue 'hooks'"),
    ],
)
def test_webhook_refuses_what_the_message_may_not_choose(
    receiver: Receiver, hooks: Queue, extra: dict[str, Any], error: str
) -> None:
    endpoint(receiver, hooks)
    endpoint(receiver, hooks, name="off", enabled=False)
    other = services.create_queue(name="other", type="database")
    endpoint(receiver, other, name="elsewhere")
    message = {"handler": "webhook", "endpoint": "crm", "payload": {"n": 1}, **extra}
    with pytest.raises(MalformedMessage, match=error):
        webhook(message, make_ctx(hooks))
    assert receiver.requests == [], "nothing was posted anywhere"


def test_a_queue_without_an_endpoint_refuses_a_webhook_message(hooks: Queue) -> None:
    with pytest.raises(MalformedMessage, match="queue 'hooks' has no enabled webhook endpoint"):
        webhook({"handler": "webhook", "payload": {}}, make_ctx(hooks))


def test_log_writes_the_message_to_the_lifecycle_log_and_acks() -> None:
    sink = Collect()
    ctx = make_ctx(events=sink)
    log_handler({"handler": "log", "hello": "world"}, ctx)
    assert ctx.outcome == Outcome.ack()
    (line,) = sink.events
    assert json.loads(line.detail) == {"handler": "log", "hello": "world"}
