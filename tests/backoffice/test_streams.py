from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.db import connections
from django.test import AsyncClient


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
