"""Attacks on the webhook handler, run by a real worker on a database queue: an endpoint that
points (or resolves) at the worker's own network is refused after DNS, the message goes to the
dead-letter queue at once with the reason, and the local receiver behind that address sees no
request. A publisher cannot bring their own URL or secret either. Allowing the network
(``QUAYMASTER_WEBHOOK_ALLOWED_NETWORKS``) is what lets the same receiver get the signed POST."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from queues import dead_letters, services
from queues.models import Queue
from tests.workers.helpers import events, publish, wait_for_events
from tests.workers.webhook_receiver import Receiver, serve
from workers.endpoints import SIGNATURE_HEADER, create_endpoint
from workers.handlers import webhook
from workers.models import EventKind
from workers.registry import Registry
from workers.runtime import Worker

SECRET = "endpoint-secret"
PUBLIC_ONLY = "webhooks reach public addresses only (QUAYMASTER_WEBHOOK_ALLOWED_NETWORKS)"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serve() as received:
        yield received


@pytest.fixture
def hooks(transactional_db: None) -> Queue:
    return services.create_queue(name="hooks", type="database", max_attempts=5)


@pytest.fixture
def run(registry: Registry, start_worker: Callable[..., Worker]) -> Callable[[Queue], Worker]:
    registry.handler("webhook")(webhook)
    return start_worker


def dead_lettered(queue: Queue, message_id: str) -> str:
    """The dead-letter reason of the one message, once the worker gave up on it."""
    wait_for_events(queue, 1, kind=EventKind.DEAD_LETTERED)
    (dead,) = dead_letters.list_dead_letters(queue)
    assert dead.message_id == message_id
    return dead.reason


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (
            "http://127.0.0.1:{port}/hook",
            re.escape(f"127.0.0.1 is a loopback address; {PUBLIC_ONLY}"),
        ),
        ("http://localhost:{port}/hook", "localhost resolves to (127.0.0.1|::1), a loopback"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "169.254.169.254 is a link-local address \\(cloud metadata service\\)",
        ),
        (
            "http://[::ffff:127.0.0.1]:{port}/hook",
            "::ffff:127.0.0.1 \\(IPv4 127.0.0.1\\) is a loopback address",
        ),
        ("http://10.0.0.8:{port}/hook", "10.0.0.8 is a private address"),
        ("http://100.64.0.1/", "100.64.0.1 is a shared \\(carrier-grade NAT\\) address"),
        ("http://0.0.0.0:{port}/hook", "0.0.0.0 is an unspecified address"),
    ],
)
def test_an_endpoint_on_a_non_public_address_is_refused_and_dead_lettered_at_once(
    receiver: Receiver, hooks: Queue, run: Callable[[Queue], Worker], url: str, reason: str
) -> None:
    create_endpoint(
        name="inside", url=url.format(port=receiver.port), secret=SECRET, queues=[hooks]
    )
    (message_id,) = publish(hooks, {"handler": "webhook", "endpoint": "inside", "payload": {}})
    run(hooks)

    found = dead_lettered(hooks, message_id)
    assert re.search(reason, found), found
    assert "AddressRefused" in found
    assert "attempt 1; not retried" in found
    assert len(events(hooks, kind=EventKind.STARTED)) == 1, "a refused address is not retried"
    assert receiver.requests == [], "the local receiver saw no request"


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"url": "http://127.0.0.1:{port}/hook"}, "carries 'url'"),
        ({"secret_name": "crm"}, "carries 'secret_name'"),
        ({"endpoint": "elsewhere"}, "'elsewhere' does not take messages from queue 'hooks'"),
    ],
)
def test_a_publisher_cannot_choose_the_url_the_secret_or_another_queues_endpoint(
    receiver: Receiver,
    hooks: Queue,
    run: Callable[[Queue], Worker],
    settings: Any,
    extra: dict[str, str],
    reason: str,
) -> None:
    settings.QUAYMASTER_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    create_endpoint(name="crm", url=receiver.url, secret=SECRET, queues=[hooks])
    other = services.create_queue(name="other", type="database")
    create_endpoint(name="elsewhere", url=receiver.url, secret="other", queues=[other])
    body = {"handler": "webhook", "endpoint": "crm", "payload": {"forged": True}}
    body.update({key: value.format(port=receiver.port) for key, value in extra.items()})
    (message_id,) = publish(hooks, body)
    run(hooks)

    found = dead_lettered(hooks, message_id)
    assert "MalformedMessage" in found
    assert reason in found
    assert "attempt 1; not retried" in found
    assert receiver.requests == []


def test_an_allowed_network_gets_the_post_signed_with_the_endpoints_secret(
    receiver: Receiver, hooks: Queue, run: Callable[[Queue], Worker], settings: Any
) -> None:
    settings.QUAYMASTER_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    create_endpoint(name="crm", url=receiver.url, secret=SECRET, queues=[hooks])
    (message_id,) = publish(hooks, {"handler": "webhook", "endpoint": "crm", "payload": {"n": 7}})
    run(hooks)

    wait_for_events(hooks, 1, kind=EventKind.COMPLETE)
    ((headers, body),) = receiver.requests
    assert json.loads(body) == {"n": 7}
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] == expected
    assert headers["X-Quaymaster-Message-Id"] == message_id
    assert dead_letters.list_dead_letters(hooks) == []
