from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.db import connections
from django.test import AsyncClient, Client

from backoffice import streams


@pytest.mark.django_db(transaction=True)
async def test_heartbeat_stream_needs_login_and_sends_events():
    client = AsyncClient()
    assert (await client.get("/streams/heartbeat")).status_code == 401

    user = await User.objects.acreate_user("ada", password="correct horse battery")
    await client.aforce_login(user)
    response = await client.get("/streams/heartbeat?limit=1")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    body = b"".join([chunk async for chunk in response.streaming_content]).decode()
    assert body.startswith("event: heartbeat\ndata: ")
    assert body.endswith("\n\n")
    # The async ORM ran in a worker thread: close its connection so the test database drops.
    await sync_to_async(connections.close_all)()


def _read_within(response: Any, seconds: float) -> str:
    """The whole streamed body, read in a thread: a stream that does not end within
    ``seconds`` fails the test instead of hanging it."""
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.extend(response.streaming_content), daemon=True)
    reader.start()
    reader.join(seconds)
    assert not reader.is_alive(), f"the stream was still open after {seconds} s"
    return b"".join(chunks).decode()


@pytest.mark.django_db
def test_under_wsgi_the_heartbeat_stream_ends_at_once_and_asks_for_a_reconnect():
    """Under WSGI (gunicorn's sync workers, the test client) a stream would hold a worker
    for as long as it runs: the heartbeat sends one beat and ends, with ``retry:``."""
    client = Client()
    client.force_login(User.objects.create_user("ada"))
    for query in ["", "?limit=1000"]:
        started = time.monotonic()
        response = client.get(f"/streams/heartbeat{query}")
        assert response.status_code == 200
        assert response["Content-Type"] == "text/event-stream"
        body = _read_within(response, 2.0)
        assert time.monotonic() - started < 2.0
        assert body.startswith(f"retry: {int(streams.HEARTBEAT_SECONDS * 1000)}\n\n")
        assert body.count("event: heartbeat\n") == 1


@pytest.mark.django_db
@pytest.mark.parametrize("limit", ["abc", "0", "-1", "1.5", "1001", "9" * 30, "²", "1e3", " 5"])
def test_a_heartbeat_limit_that_is_not_1_to_1000_is_400(limit: str):
    client = Client()
    client.force_login(User.objects.create_user("ada"))
    response = client.get("/streams/heartbeat", {"limit": limit})
    assert response.status_code == 400
    assert "limit must be a whole number from 1 to 1000" in response.content.decode()


def _allowed(origin: str) -> str | None:
    """What the streams process answers a page of ``origin`` (a refusal carries CORS headers
    too, so this needs no login)."""
    response = Client().get("/streams/lifecycle", headers={"Origin": origin})
    assert response.status_code == 401
    return response.get("Access-Control-Allow-Origin")


@pytest.mark.django_db
def test_with_a_configured_web_origin_the_streams_let_only_that_origin_read(settings: Any):
    """The attack: a page on another port or scheme of the same host (any service there, or
    plain http beside https) reading a user's live streams with their cookies."""
    settings.QUAYMASTER_WEB_ORIGIN = ["https://testserver"]
    settings.QUAYMASTER_STREAMS_SAME_HOST = False
    settings.CSRF_TRUSTED_ORIGINS = ["https://ops.example.com"]
    assert _allowed("https://testserver") == "https://testserver"
    assert _allowed("https://ops.example.com") == "https://ops.example.com"
    for origin in [
        "http://testserver",
        "https://testserver:8443",
        "http://testserver:8000",
        "https://evil.testserver",
        "https://testserver.evil.example",
        "https://TESTSERVER.",
        "null",
    ]:
        assert _allowed(origin) is None, origin


@pytest.mark.django_db
def test_production_without_a_web_origin_lets_no_other_origin_read(settings: Any):
    settings.QUAYMASTER_WEB_ORIGIN = []
    settings.QUAYMASTER_STREAMS_SAME_HOST = False
    settings.CSRF_TRUSTED_ORIGINS = []
    for origin in ["http://testserver:8000", "https://testserver"]:
        assert _allowed(origin) is None, origin


@pytest.mark.django_db
def test_development_keeps_the_same_host_rule(settings: Any):
    settings.QUAYMASTER_WEB_ORIGIN = []
    settings.QUAYMASTER_STREAMS_SAME_HOST = True
    assert _allowed("http://testserver:8000") == "http://testserver:8000"
    assert _allowed("http://evil.example:8000") is None


@pytest.mark.django_db
@pytest.mark.parametrize("limit", ["abc", "0", "-1", "1.5", "10001", "9" * 30, "²", "1e3"])
def test_a_lifecycle_limit_that_is_not_1_to_10000_is_400(limit: str):
    client = Client()
    client.force_login(User.objects.create_superuser("ops"))
    response = client.get("/streams/lifecycle", {"limit": limit})
    assert response.status_code == 400
    assert "limit must be a whole number from 1 to 10000" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("after", ["²", "9" * 40, "-3", "x"])
def test_a_lifecycle_cursor_that_is_not_a_number_starts_from_the_beginning(after: str):
    client = Client()
    client.force_login(User.objects.create_superuser("ops"))
    response = client.get("/streams/lifecycle", {"after": after, "limit": "1"})
    assert response.status_code == 200
    response.close()
