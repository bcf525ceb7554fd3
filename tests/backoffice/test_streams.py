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
