"""The operations pages in a real browser: an admin opens the live log, a worker writes a
lifecycle event, and it appears at the top of the table without a reload; a filter re-opens
the stream. The workers page shows alive, draining and lost processes. Both are saved as
screenshots.

The page and the stream are served by the same live server here (WSGI: the stream ends after
each batch and the EventSource reconnects with ``Last-Event-ID``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from queues import services
from tests.browser.conftest import log_in, make_user, screenshot
from workers.events import Event, EventWriter
from workers.models import EventKind, Level, LifecycleEvent, WorkerProcess

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("tests.backoffice.test_pages_operations"),
]

#: An event must show within a poll of the stream (and a reconnect), with a margin.
STREAM_MS = 8_000


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def write(*events: Event) -> None:
    """What a worker does: through the batching writer, flushed at once."""
    writer = EventWriter()
    for item in events:
        writer.emit(item)
    assert writer.flush() == len(events)


def test_an_admin_watches_the_live_log(page: Any, live_server: Any, settings: Any):
    settings.QUAYMASTER_STREAMS_URL = live_server.url + "/streams/"
    services.create_queue(name="emails", type="database")
    services.create_queue(name="billing", type="database")
    LifecycleEvent.objects.create(
        queue="emails", kind=EventKind.COMPLETE, handler="send_email", message_id="before"
    )
    make_user("root", admin=True)
    log_in(page, "root")

    page.goto("/live/")
    expect(page.get_by_role("heading", name="Live log")).to_be_visible()
    # The latest events are there from the start.
    expect(page.locator("#live-rows tr")).to_have_count(1, timeout=STREAM_MS)
    expect(page.locator("#live-status")).to_have_text("live", timeout=STREAM_MS)

    write(
        Event(
            queue="emails",
            kind=EventKind.FAILED,
            message_id="msg-42",
            handler="send_email",
            level=Level.ERROR,
            detail="SMTPRecipientsRefused: 550 mailbox unavailable",
            attempt=2,
            duration_ms=137,
        )
    )
    newest = page.locator("#live-rows tr").first
    expect(newest).to_contain_text("msg-42", timeout=STREAM_MS)
    expect(newest).to_contain_text("failed")
    expect(newest).to_contain_text("SMTPRecipientsRefused: 550 mailbox unavailable · 137 ms")
    expect(newest).to_have_class("row-error")
    expect(page.locator("#live-rows tr")).to_have_count(2)

    write(
        Event(queue="billing", kind=EventKind.STARTED, message_id="inv-7", handler="charge"),
        Event(
            queue="billing",
            kind=EventKind.COMPLETE,
            message_id="inv-7",
            handler="charge",
            duration_ms=48,
        ),
        Event(queue="emails", kind=EventKind.LOG, handler="send_email", detail="retrying soon"),
    )
    expect(page.locator("#live-rows tr")).to_have_count(5, timeout=STREAM_MS)
    expect(page.locator("#live-rows tr").first).to_contain_text("retrying soon")
    screenshot(page, "live-log")

    # A filter starts over with the matching events only, and keeps following.
    page.get_by_label("Queue").select_option("billing")
    expect(page.locator("#live-rows tr")).to_have_count(2, timeout=STREAM_MS)
    expect(page.locator("#live-rows")).not_to_contain_text("msg-42")
    assert "queue=billing" in page.url
    write(
        Event(queue="emails", kind=EventKind.COMPLETE, message_id="not-billing"),
        Event(queue="billing", kind=EventKind.RETRIED, message_id="inv-8", handler="charge"),
    )
    expect(page.locator("#live-rows tr").first).to_contain_text("inv-8", timeout=STREAM_MS)
    expect(page.locator("#live-rows")).not_to_contain_text("not-billing")


def test_an_admin_sees_the_workers(page: Any, settings: Any):
    settings.QUAYMASTER_WORKER_HEARTBEAT_SECONDS = 5.0
    emails = services.create_queue(name="emails", type="database")
    billing = services.create_queue(name="billing", type="database")
    now = timezone.now()

    def worker(queue: Any, pid: int, beat_ago: float, **fields: Any) -> WorkerProcess:
        return WorkerProcess.objects.create(
            queue=queue,
            host="worker-a.internal",
            pid=pid,
            concurrency=8,
            started_at=now - timedelta(minutes=42),
            heartbeat_at=now - timedelta(seconds=beat_ago),
            **fields,
        )

    worker(emails, 4101, 2, processed=1520, failed=12, retried=9, dead_lettered=1, in_flight=3)
    worker(emails, 4102, 1, processed=1498, failed=3, retried=3, draining_at=now)
    lost = worker(billing, 5120, 95, processed=77, failed=1, retried=1)
    worker(billing, 3999, 4000, processed=10, stopped_at=now - timedelta(hours=1))
    make_user("root", admin=True)
    log_in(page, "root")

    page.goto("/workers/")
    expect(page.get_by_role("heading", name="Workers", exact=True)).to_be_visible()
    expect(page.locator(f"#worker-{lost.pk}")).to_have_attribute("data-state", "lost")
    expect(page.locator("#workers-alive")).to_have_text("1")
    expect(page.locator("#workers-lost")).to_have_text("1")
    screenshot(page, "workers")

    # The lost worker beats again: the list follows within a refresh.
    WorkerProcess.objects.filter(pk=lost.pk).update(heartbeat_at=timezone.now())
    expect(page.locator(f"#worker-{lost.pk}")).to_have_attribute(
        "data-state", "running", timeout=STREAM_MS + 4_000
    )
    expect(page.locator("#workers-lost")).to_have_text("0")
