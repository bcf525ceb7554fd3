"""The operations pages: the workers list (alive, draining, lost by heartbeat age, refreshed
by htmx), the live log page, the lifecycle stream (events after an id, filters,
``Last-Event-ID``, login and admins only, CORS for the page on the other port) and the
dashboard's workers panel.

This module is also the URLconf of these tests (and of the browser test): the project's
URLconf plus ``backoffice.urls_operations`` until ``quaymaster.urls`` includes it.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group, User
from django.db import connections
from django.test import AsyncClient, Client
from django.urls import include, path
from django.utils import timezone

from backoffice import streams
from quaymaster import urls as project_urls
from queues import services
from queues.models import Queue
from workers.models import EventKind, Level, LifecycleEvent, WorkerProcess

urlpatterns = list(project_urls.urlpatterns)
if not any(getattr(p, "namespace", None) == "operations" for p in urlpatterns):
    urlpatterns.insert(0, path("", include("backoffice.urls_operations")))

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

HTMX_WORKERS = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "workers"}


def user(name: str = "root", *, admin: bool = True) -> User:
    account = User.objects.create_user(name)
    account.groups.add(Group.objects.get_or_create(name="admins" if admin else "business users")[0])
    return account


@pytest.fixture
def admin(client: Client) -> Client:
    client.force_login(user())
    return client


@pytest.fixture
def jobs() -> Queue:
    return services.create_queue(name="jobs", type="database")


def worker(queue: Queue, pid: int, *, beat_ago: float, **fields: Any) -> WorkerProcess:
    now = timezone.now()
    return WorkerProcess.objects.create(
        queue=queue,
        host="box-1",
        pid=pid,
        concurrency=4,
        started_at=now - timedelta(hours=1),
        heartbeat_at=now - timedelta(seconds=beat_ago),
        **fields,
    )


def event(kind: str = EventKind.COMPLETE, **fields: Any) -> LifecycleEvent:
    values: dict[str, Any] = {
        "queue": "jobs",
        "handler": "send_email",
        "message_id": "m-1",
        "level": Level.ERROR if kind in (EventKind.FAILED, EventKind.DEAD_LETTERED) else "info",
    }
    values.update(fields)
    return LifecycleEvent.objects.create(kind=kind, **values)


def sse(body: str) -> list[dict[str, Any]]:
    """The ``lifecycle`` events of a stream: their id line and decoded data."""
    found = []
    for block in body.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if lines.get("event") == "lifecycle":
            found.append({"id": int(lines["id"]), **json.loads(lines["data"])})
    return found


def stream(client: Client, query: str = "", **headers: str) -> tuple[Any, list[dict[str, Any]]]:
    response = client.get(f"/streams/lifecycle{query}", headers=headers)
    body = b"".join(response).decode() if response.status_code == 200 else ""
    return response, sse(body)


# -- access ------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["/workers/", "/live/"])
def test_pages_need_login_then_an_admin(client: Client, page: str):
    response = client.get(page)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")
    client.force_login(user("bob", admin=False))
    assert client.get(page).status_code == 403
    assert client.get(page, **HTMX_WORKERS).status_code == 403


def test_the_stream_needs_login_then_an_admin(client: Client):
    event()
    assert client.get("/streams/lifecycle").status_code == 401
    client.force_login(user("bob", admin=False))
    response, events = stream(client)
    assert response.status_code == 403
    assert events == []


# -- workers -----------------------------------------------------------------------------------


def test_the_workers_partial_shows_lost_workers_by_heartbeat_age(
    admin: Client, jobs: Queue, settings: Any
):
    settings.QUAYMASTER_WORKER_HEARTBEAT_SECONDS = 5.0  # lost after 3 missed beats: 15 s
    alive = worker(jobs, 101, beat_ago=3, processed=42, failed=2, retried=1)
    late = worker(jobs, 102, beat_ago=12)
    lost = worker(jobs, 103, beat_ago=20)
    draining = worker(jobs, 104, beat_ago=1, draining_at=timezone.now())
    stopped = worker(jobs, 105, beat_ago=600, stopped_at=timezone.now())

    response = admin.get("/workers/", **HTMX_WORKERS)

    assert response.status_code == 200
    assert [t.name for t in response.templates] == ["operations/_workers.html"]
    html = response.content.decode()
    assert "<html" not in html
    assert 'id="workers" hx-get="/workers/" hx-trigger="every 5s"' in html
    for process, state in [
        (alive, "running"),
        (late, "running"),
        (lost, "lost"),
        (draining, "draining"),
        (stopped, "stopped"),
    ]:
        assert f'id="worker-{process.pk}" data-state="{state}"' in html
    assert '<span class="badge revoked">lost</span>' in html
    assert html.count('<span class="badge create">alive</span>') == 2
    assert '<span class="badge update">draining</span>' in html
    assert 'id="workers-alive">2<' in html
    assert 'id="workers-lost">1<' in html
    assert "3 s ago" in html
    assert "20 s ago" in html
    assert '<td class="num" data-stat="processed">42</td>' in html

    # A lost worker's heartbeat coming back makes it alive again on the next refresh.
    WorkerProcess.objects.filter(pk=lost.pk).update(heartbeat_at=timezone.now())
    html = admin.get("/workers/", **HTMX_WORKERS).content.decode()
    assert f'id="worker-{lost.pk}" data-state="running"' in html
    assert 'id="workers-lost">0<' in html


def test_the_workers_partial_shows_what_each_worker_holds_back_for_per_key_order(
    admin: Client, jobs: Queue
):
    holding = worker(jobs, 201, beat_ago=1, in_flight=12, held_back=7)
    stopped = worker(jobs, 202, beat_ago=600, held_back=3, stopped_at=timezone.now())

    html = admin.get("/workers/", **HTMX_WORKERS).content.decode()

    assert ">Held back</th>" in html
    row = html.split(f'id="worker-{holding.pk}"')[1].split("</tr>")[0]
    assert '<td class="num" data-stat="held-back">7</td>' in row
    row = html.split(f'id="worker-{stopped.pk}"')[1].split("</tr>")[0]
    assert '<td class="num" data-stat="held-back">—</td>' in row


def test_the_workers_page_is_a_whole_page_that_polls(admin: Client):
    response = admin.get("/workers/")
    assert "base.html" in [t.name for t in response.templates]
    html = response.content.decode()
    assert "<h1>Workers</h1>" in html
    assert 'hx-trigger="every 5s"' in html
    assert 'id="workers-empty"' in html
    # A history restore needs the whole page even though htmx asks.
    restore = admin.get("/workers/", HTTP_HX_HISTORY_RESTORE_REQUEST="true", **HTMX_WORKERS)
    assert "<h1>Workers</h1>" in restore.content.decode()


# -- the live log page -------------------------------------------------------------------------


def test_the_live_page_points_at_the_streams_process(admin: Client, jobs: Queue, settings: Any):
    settings.QUAYMASTER_STREAMS_URL = "http://127.0.0.1:8001/streams/"
    event()
    html = admin.get("/live/?queue=jobs&handler=send_email&level=bogus").content.decode()
    assert '"http://127.0.0.1:8001/streams/lifecycle"' in html
    assert "withCredentials: true" in html
    # Fewer events than the backlog: the page starts with all of them.
    assert '<script id="live-after" type="application/json">0<' in html
    assert '<option value="jobs" selected>jobs</option>' in html
    assert 'value="send_email"' in html
    assert '<option value="" selected>' not in html  # an unknown level is ignored
    assert 'id="live-rows"' in html


def test_the_live_page_starts_with_the_latest_hundred(admin: Client):
    created = [event(message_id=f"m-{n}") for n in range(105)]
    html = admin.get("/live/").content.decode()
    assert f'<script id="live-after" type="application/json">{created[4].pk}<' in html


# -- the lifecycle stream ----------------------------------------------------------------------


def test_the_stream_sends_the_events_after_an_id(admin: Client):
    old, *new = [event(message_id=f"m-{n}", duration_ms=n) for n in range(3)]

    response, events = stream(admin, f"?after={old.pk}")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    assert response["Cache-Control"] == "no-cache"
    assert [e["id"] for e in events] == [e.pk for e in new]
    assert events[0]["message_id"] == "m-1"
    assert events[0]["duration_ms"] == 1
    assert events[0]["kind"] == "complete"
    assert events[0]["at"] == new[0].at.isoformat()
    body = b"".join(admin.get(f"/streams/lifecycle?after={old.pk}")).decode()
    assert body.startswith(f"retry: {streams.RETRY_MS}\n\n")
    assert f"event: lifecycle\nid: {new[0].pk}\ndata: {{" in body


def test_the_stream_filters_by_queue_handler_and_minimum_level(admin: Client):
    wanted = event(kind=EventKind.FAILED, queue="jobs", handler="send_email")
    event(kind=EventKind.LOG, queue="jobs", handler="send_email", level=Level.WARNING)
    event(kind=EventKind.FAILED, queue="other", handler="send_email")
    event(kind=EventKind.FAILED, queue="jobs", handler="charge_card")
    event(kind=EventKind.COMPLETE, queue="jobs", handler="send_email")

    _, events = stream(admin, "?queue=jobs&handler=send_email&level=error")
    assert [e["id"] for e in events] == [wanted.pk]
    _, events = stream(admin, "?queue=jobs&handler=send_email&level=warning")
    assert [e["kind"] for e in events] == ["failed", "log"]
    _, events = stream(admin, "?handler=charge_card")
    assert [e["queue"] for e in events] == ["jobs"]
    assert stream(admin, "?level=loud")[0].status_code == 400


def test_last_event_id_resumes_the_stream(admin: Client):
    first, second, third = (event(message_id=f"m-{n}") for n in range(3))
    # The browser reconnects with the page's original ?after= and the last id it saw.
    _, events = stream(admin, f"?after={first.pk - 1}", **{"Last-Event-ID": str(second.pk)})
    assert [e["id"] for e in events] == [third.pk]
    _, events = stream(admin, f"?after={first.pk}", **{"Last-Event-ID": "junk"})
    assert [e["id"] for e in events] == [second.pk, third.pk]


def test_limit_ends_the_stream_after_that_many_events(admin: Client):
    made = [event(message_id=f"m-{n}") for n in range(4)]
    _, events = stream(admin, "?limit=2")
    assert [e["id"] for e in events] == [e.pk for e in made[:2]]


def test_under_wsgi_a_quiet_stream_ends_after_a_while(
    admin: Client, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(streams, "WSGI_WAIT_SECONDS", 0.2)
    monkeypatch.setattr(streams, "POLL_SECONDS", 0.05)
    response, events = stream(admin, "?after=999999")
    assert response.status_code == 200
    assert events == []


def test_the_stream_lets_pages_of_the_same_host_read_it(admin: Client, settings: Any):
    event()
    settings.CSRF_TRUSTED_ORIGINS = ["https://ops.example.com"]
    for origin in ["http://testserver:8000", "https://ops.example.com"]:
        response, _ = stream(admin, Origin=origin)
        assert response["Access-Control-Allow-Origin"] == origin
        assert response["Access-Control-Allow-Credentials"] == "true"
        assert "Origin" in response["Vary"]
    for origin in ["http://evil.example:8000", "null", "file://testserver"]:
        response, _ = stream(admin, Origin=origin)
        assert "Access-Control-Allow-Origin" not in response
    # A refusal is readable by the page too (it can tell "log in again" from "down").
    anonymous = Client().get("/streams/lifecycle", headers={"Origin": "http://testserver:8000"})
    assert anonymous.status_code == 401
    assert anonymous["Access-Control-Allow-Origin"] == "http://testserver:8000"


@pytest.mark.django_db(transaction=True)
async def test_under_asgi_the_stream_keeps_polling_until_the_limit():
    account = await sync_to_async(user)()
    first = await sync_to_async(event)(message_id="m-0")
    client = AsyncClient()
    await client.aforce_login(account)
    response = await client.get(f"/streams/lifecycle?after={first.pk - 1}&limit=2")
    assert response.status_code == 200
    chunks = response.streaming_content.__aiter__()
    assert await anext(chunks) == b"retry: 1000\n\n"
    assert b'"message_id":"m-0"' in await anext(chunks)
    # Under ASGI the stream is still open: a new event arrives on the next poll.
    second = await sync_to_async(event)(message_id="m-1")
    assert f"id: {second.pk}\n".encode() in await anext(chunks)
    with pytest.raises(StopAsyncIteration):
        await anext(chunks)
    await sync_to_async(connections.close_all)()


# -- the dashboard panel -----------------------------------------------------------------------


def test_the_dashboard_shows_workers_throughput_and_recent_failures(
    admin: Client, jobs: Queue, client: Client
):
    worker(jobs, 1, beat_ago=1)
    worker(jobs, 2, beat_ago=2)
    worker(jobs, 3, beat_ago=3600)
    worker(jobs, 4, beat_ago=3600, stopped_at=timezone.now())
    old = timezone.now() - timedelta(minutes=5)
    for _ in range(3):
        event(kind=EventKind.COMPLETE)
    event(kind=EventKind.COMPLETE, at=old)
    event(kind=EventKind.FAILED, detail="ValueError: too old", at=old)
    for n in range(5):
        event(kind=EventKind.FAILED, detail=f"TimeoutError: smtp {n}", attempt=n + 1)
    event(kind=EventKind.DEAD_LETTERED, detail="gave up after 5 attempts")

    html = admin.get("/").content.decode()

    assert ">Workers</h2>" in html
    assert 'id="dashboard-workers-alive">2<' in html
    assert 'id="dashboard-workers-lost">1 lost<' in html
    assert 'id="dashboard-processed">3<' in html
    assert 'id="dashboard-failed">5 failed<' in html
    failures = html.split('id="dashboard-failures"')[1].split("</table>")[0]
    assert failures.count("<tr>") == 6  # the header and the latest five
    assert "gave up after 5 attempts" in failures
    assert "TimeoutError: smtp 4" in failures
    assert "TimeoutError: smtp 0" not in failures
    assert "too old" not in failures

    business = Client()
    business.force_login(user("bob", admin=False))
    assert "dashboard-workers-alive" not in business.get("/").content.decode()


def test_the_dashboard_panel_says_when_nothing_failed(admin: Client):
    html = admin.get("/").content.decode()
    assert 'id="dashboard-workers-alive">0<' in html
    assert 'id="dashboard-no-failures"' in html
