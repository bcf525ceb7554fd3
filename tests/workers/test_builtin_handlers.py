"""The built-in handlers: send_email, webhook (against a local HTTP server), log."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.core import mail

from queues.messages import Delivery
from queues.models import Queue
from workers.context import Context
from workers.errors import MalformedMessage, WebhookFailed
from workers.events import Event, EventSink
from workers.handlers import SIGNATURE_HEADER, send_email, sign, webhook
from workers.handlers import log as log_handler
from workers.job import Outcome


class Collect(EventSink):
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


def make_ctx(events: EventSink | None = None) -> Context:
    delivery = Delivery(str(uuid.uuid4()), b"{}", 1, {}, None)
    return Context(queue=Queue(name="hooks"), delivery=delivery, handler="h", events=events)


@dataclass
class Receiver:
    """A local HTTP endpoint that answers ``status`` and keeps what it received."""

    url: str = ""
    status: int = 204
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    received = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.requests.append((dict(self.headers), body))
            self.send_response(received.status)
            if received.status in (301, 302):
                self.send_header("Location", "http://127.0.0.1:1/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    received.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()


def test_send_email_uses_djangos_email_backend() -> None:
    ctx = make_ctx()
    send_email(
        {"handler": "send_email", "to": "ada@example.com", "subject": "Hi", "body": "Hello"}, ctx
    )
    assert ctx.outcome == Outcome.ack()
    (sent,) = mail.outbox
    assert sent.to == ["ada@example.com"]
    assert (sent.subject, sent.body) == ("Hi", "Hello")


@pytest.mark.parametrize(
    "message",
    [
        {"subject": "Hi", "body": "x"},
        {"to": "ada@example.com", "body": "x"},
        {"to": ["not-an-address"], "subject": "Hi", "body": "x"},
    ],
)
def test_send_email_refuses_an_incomplete_message(message: dict[str, Any]) -> None:
    with pytest.raises(MalformedMessage):
        send_email({"handler": "send_email", **message}, make_ctx())
    assert not mail.outbox


def test_webhook_posts_the_payload_signed_with_the_named_secret(
    receiver: Receiver, settings: Any
) -> None:
    settings.QUAYMASTER_WEBHOOK_SECRETS = {"crm": "s3cret"}
    ctx = make_ctx()
    payload = {"order": 42, "lines": [1, 2]}
    webhook(
        {"handler": "webhook", "url": receiver.url, "payload": payload, "secret_name": "crm"}, ctx
    )

    assert ctx.outcome == Outcome.ack()
    ((headers, body),) = receiver.requests
    assert json.loads(body) == payload
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] == expected == sign("s3cret", body)
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Quaymaster-Message-Id"] == ctx.message_id


@pytest.mark.parametrize("status", [500, 404, 302])
def test_webhook_raises_on_anything_but_2xx_so_the_message_is_retried(
    receiver: Receiver, status: int
) -> None:
    receiver.status = status
    ctx = make_ctx()
    with pytest.raises(WebhookFailed, match=str(status)):
        webhook({"handler": "webhook", "url": receiver.url, "payload": {}}, ctx)
    assert ctx.outcome is None
    assert len(receiver.requests) == 1, "a redirect is not followed"


def test_webhook_without_an_answer_is_retried() -> None:
    with pytest.raises(WebhookFailed, match="no answer"):
        webhook({"handler": "webhook", "url": "http://127.0.0.1:1/", "timeout": 2}, make_ctx())


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"url": "ftp://example.com/"}, "http"),
        ({"url": "http://x/", "secret_name": "unknown"}, "No webhook secret named 'unknown'"),
        ({"url": "http://x/", "timeout": 600}, "timeout"),
        ({}, "url"),
    ],
)
def test_webhook_refuses_a_message_it_cannot_send(
    message: dict[str, Any], error: str, settings: Any
) -> None:
    settings.QUAYMASTER_WEBHOOK_SECRETS = {"crm": "s3cret"}
    with pytest.raises(MalformedMessage, match=error):
        webhook({"handler": "webhook", **message}, make_ctx())


def test_log_writes_the_message_to_the_lifecycle_log_and_acks() -> None:
    sink = Collect()
    ctx = make_ctx(sink)
    log_handler({"handler": "log", "hello": "world"}, ctx)
    assert ctx.outcome == Outcome.ack()
    (line,) = sink.events
    assert json.loads(line.detail) == {"handler": "log", "hello": "world"}
