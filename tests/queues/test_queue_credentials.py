"""A queue's stored secret goes only where it was typed for: changing the type, url or username
of a queue with a secret needs the secret again in the same request, and no answer shows any
of it. The attack: an admin token (or session) that does not know the password points the
queue at a listener of its own and asks to "check the connection"."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.test import Client
from rest_framework.test import APIClient

from queues import services
from queues.models import Queue

pytestmark = pytest.mark.django_db

API = "/api/v1/queues/"
SECRET = "the-real-broker-password-42"
REAL_URL = "amqp://mq.internal.example:5672/"


class AmqpListener:
    """A loopback socket that speaks the first step of AMQP 0-9-1: it answers the client's
    protocol header with ``Connection.Start`` (offering PLAIN) and keeps what the client sends
    back, where ``Connection.Start-Ok`` carries the user name and password in clear."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen()
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.received = b""
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"amqp://127.0.0.1:{self.port}/"

    @staticmethod
    def _start_frame() -> bytes:
        def longstr(value: bytes) -> bytes:
            return struct.pack(">I", len(value)) + value

        method = struct.pack(">HHBB", 10, 10, 0, 9) + struct.pack(">I", 0)  # no properties
        method += longstr(b"PLAIN AMQPLAIN") + longstr(b"en_US")
        return struct.pack(">BHI", 1, 0, len(method)) + method + b"\xce"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with conn:
                conn.settimeout(1.0)
                try:
                    self.received += conn.recv(8)  # b"AMQP\x00\x00\x09\x01"
                    conn.sendall(self._start_frame())
                    while chunk := conn.recv(4096):
                        self.received += chunk
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.server.close()


@pytest.fixture
def listener() -> Iterator[AmqpListener]:
    listening = AmqpListener()
    yield listening
    listening.close()


@pytest.fixture
def admin() -> APIClient:
    user = User.objects.create_user("root")
    user.groups.add(Group.objects.get(name="admins"))
    client = APIClient()
    client.force_authenticate(user)
    return client


def stored_queue(**fields: str) -> Queue:
    return services.create_queue(
        name="billing",
        type="rabbitmq",
        url=REAL_URL,
        username="billing",
        secret=SECRET,
        **fields,
    )


def test_the_listener_does_collect_a_password_it_is_sent(admin: APIClient, listener: AmqpListener):
    """The control: what "check" sends to a listener, the listener gets."""
    queue = stored_queue()
    moved = admin.patch(
        f"{API}{queue.pk}/", {"url": listener.url, "secret": "typed-for-it"}, format="json"
    )
    assert moved.status_code == 200, moved.content
    admin.post(f"{API}{queue.pk}/check/")
    assert b"typed-for-it" in listener.received


@pytest.mark.parametrize(
    "change",
    [{"url": "LISTENER"}, {"username": "guest"}, {"type": "kafka", "url": "127.0.0.1:1"}],
)
def test_moving_a_queue_without_its_secret_is_refused(
    admin: APIClient, listener: AmqpListener, change: dict[str, str]
):
    queue = stored_queue()
    change = {k: listener.url if v == "LISTENER" else v for k, v in change.items()}
    refused = admin.patch(f"{API}{queue.pk}/", change, format="json")
    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid"
    assert "send the secret again" in refused.json()["fields"]["secret"][0]
    queue.refresh_from_db()
    assert (queue.type, queue.url, queue.username) == ("rabbitmq", REAL_URL, "billing")
    assert queue.get_secret() == SECRET
    # A full PUT is the same change.
    body = {"name": "billing", "type": "rabbitmq", "url": listener.url, "username": "billing"}
    assert admin.put(f"{API}{queue.pk}/", body, format="json").status_code == 400


def test_moving_a_queue_with_its_secret_removed_sends_nothing_of_it(
    admin: APIClient, listener: AmqpListener
):
    queue = stored_queue()
    moved = admin.patch(f"{API}{queue.pk}/", {"url": listener.url, "secret": ""}, format="json")
    assert moved.status_code == 200, moved.content
    assert moved.json()["secret_set"] is False
    queue.refresh_from_db()
    assert not queue.has_secret

    admin.post(f"{API}{queue.pk}/check/")
    assert listener.connections >= 1, "check did connect to the listener"
    assert SECRET.encode() not in listener.received


def test_other_changes_keep_the_secret_and_no_answer_shows_any_of_it(admin: APIClient):
    queue = stored_queue()
    kept = admin.patch(f"{API}{queue.pk}/", {"max_attempts": 9, "url": REAL_URL}, format="json")
    assert kept.status_code == 200, kept.content
    queue.refresh_from_db()
    assert (queue.max_attempts, queue.get_secret()) == (9, SECRET)
    for answer in (kept, admin.get(API), admin.get(f"{API}{queue.pk}/")):
        text = answer.content.decode()
        assert SECRET[-4:] not in text
        assert "masked" not in text
    assert kept.json()["secret_set"] is True
    schema = admin.get("/api/schema/?format=json").content.decode()
    assert "needs it again in the same request" in schema  # the rule, in the API's help text


def test_the_services_layer_refuses_the_move_and_changes_nothing():
    queue = stored_queue()
    with pytest.raises(ValidationError) as refused:
        services.update_queue(queue, url="amqp://127.0.0.1:1/", max_attempts=2)
    assert "secret" in refused.value.message_dict
    fresh = Queue.objects.get(pk=queue.pk)
    assert (fresh.url, fresh.max_attempts, fresh.get_secret()) == (REAL_URL, 5, SECRET)
    services.update_queue(queue, url="amqp://127.0.0.1:1/", secret="a-new-one")
    assert Queue.objects.get(pk=queue.pk).get_secret() == "a-new-one"
    # Without a stored secret there is nothing to walk out.
    services.update_queue(queue, secret="")
    services.update_queue(queue, url=REAL_URL, username="other")
    assert Queue.objects.get(pk=queue.pk).url == REAL_URL


def test_the_queue_page_asks_for_the_secret_again(client: Client, listener: AmqpListener):
    user = User.objects.create_user("root")
    user.groups.add(Group.objects.get(name="admins"))
    client.force_login(user)
    queue = stored_queue()
    form = {
        "name": "billing",
        "type": "rabbitmq",
        "url": listener.url,
        "username": "billing",
        "secret": "",
        "visibility_timeout": 30,
        "max_attempts": 5,
        "enabled": "on",
    }
    page = client.get(f"/queues/{queue.pk}/").content.decode()
    assert "changing the type, URL or user name needs it typed again" in page
    refused = client.post(f"/queues/{queue.pk}/", form)
    assert refused.status_code == 422
    assert "send the secret again" in refused.content.decode()
    queue.refresh_from_db()
    assert (queue.url, queue.get_secret()) == (REAL_URL, SECRET)

    removed = client.post(f"/queues/{queue.pk}/", {**form, "clear_secret": "on"})
    assert removed.status_code == 302
    queue.refresh_from_db()
    assert (queue.url, queue.has_secret) == (listener.url, False)
