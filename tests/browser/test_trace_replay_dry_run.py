"""Trace, replay and dry run in a real browser, as an admin finds them: a record's trace shows
its update acked by the handler and leads to the message's page, which the search box finds by
the engine's id too; a dead letter's Dry run shows what its handler would do and leaves it
where it is; a replay's page shows its progress and Cancel stops it. The pages are saved as the
README's screenshots (docs/screenshots/trace.png, dry-run.png, replay.png)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from queues import services
from queues.backends import get_backend
from queues.dead_letters import find_dead_letter
from queues.messages import OutgoingMessage
from queues.models import MessageTrace, OutboxMessage, Queue, QueueLink, Replay, ReplayState
from queues.replay import driver
from queues.replay import service as replays
from tests.browser.conftest import log_in, make_user, screenshot
from tests.queues.helpers import wait_for
from tests.queues.outbox_helpers import linked_table
from tests.workers.helpers import FAST
from tests.workers.test_trace import relay_all
from workers.context import Context
from workers.models import EventKind, LifecycleEvent
from workers.options import WorkerOptions
from workers.registry import handler
from workers.runtime import Worker
from zstorage import records
from zstorage.models import Record

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@handler("tests.browser.ship")
def ship(message: dict[str, Any], ctx: Context) -> None:
    ctx.log.info("shipped order %s v%s", message["data"]["number"], message["version"])
    ctx.ack()


@handler("tests.browser.fulfil")
def fulfil(message: dict[str, Any], ctx: Context) -> None:
    ctx.records.create("orders", {"number": message["number"] + "-B", "status": "new"})
    ctx.publish("fulfilment", {"handler": "log", "order": message["number"]})
    ctx.log.info("split %s into a back order", message["number"])
    ctx.ack()


def keep(page: Any, name: str) -> None:
    """A screenshot for the README, beside the test artifacts."""
    DOCS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(screenshot(page, name), DOCS / f"{name}.png")


def test_trace_dry_run_and_replay_pages(browser: Any, live_server: Any) -> None:
    make_user("root", admin=True)
    queue = Queue.objects.create(name="fulfilment", type="database", visibility_timeout=5)
    table = linked_table(queue, handler="tests.browser.ship")
    order = records.create_record(table, {"number": "SO-1042", "status": "new"})
    records.update_record(table, order.pk, {"status": "paid"})
    update = OutboxMessage.objects.get(body__version=2)
    relay_all(queue)
    worker = Worker(queue, options=WorkerOptions(**FAST))
    worker.start()
    try:
        wait_for(
            lambda: LifecycleEvent.objects.filter(
                message_id=update.message_id, kind=EventKind.COMPLETE
            ).exists(),
            30,
            "the update to be acked",
        )
    finally:
        worker.stop(drain_seconds=5)
    trace = MessageTrace.objects.get(message_id=update.message_id)

    letter = OutgoingMessage.new({"handler": "tests.browser.fulfil", "number": "SO-1042"})
    services.publish(queue, [letter])
    with get_backend(queue) as backend:
        (delivery,) = backend.fetch(max_messages=1, wait_seconds=0)
        backend.dead_letter(delivery, "KeyError: 'warehouse'")

    for number in range(1043, 1047):
        records.create_record(table, {"number": f"SO-{number}", "status": "new"})
    link = QueueLink.objects.get(queue=queue)
    replay = replays.start(link.pk, {}, 1)
    driver.run(replay.pk, driver.new_owner(), seconds=0.5)  # one chunk of one record at 1/s
    records_before = Record.objects.count()

    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        log_in(page, "root")

        # The record's trace: its update was published and acked, with the handler's line.
        page.goto(f"/records/orders/{order.pk}/")
        section = page.locator("section[aria-labelledby='trace-title']")
        section.get_by_text("acked").first.wait_for()
        assert str(update.message_id) in section.inner_text()
        assert "shipped order SO-1042 v2" in section.inner_text()
        keep(page, "trace")

        # The search box finds the message by the engine's own id (the database queue's row).
        page.goto("/messages/")
        page.get_by_label("Message id, SQS MessageId or topic:partition:offset").fill(
            str(trace.broker_id)
        )
        page.get_by_role("button", name="Find").click()
        page.wait_for_url(f"**/messages/{update.message_id}/")
        assert "acked" in page.locator("main").inner_text()

        # Dry run on the dead letter: what the handler would do, and nothing done.
        page.goto(f"/queues/{queue.pk}/dead-letters/{letter.message_id}/")
        page.get_by_role("button", name="Dry run").click()
        result = page.locator("#dry-run-result")
        result.wait_for()
        text = result.inner_text()
        assert "ack" in page.locator("#dry-run-settlement").inner_text()
        assert "SO-1042-B" in text  # the record it would write
        assert "split SO-1042 into a back order" in text
        keep(page, "dry-run")
        assert Record.objects.count() == records_before
        assert find_dead_letter(queue, str(letter.message_id)) is not None

        # The replay's page: its progress, then Cancel.
        page.goto(f"/replays/{replay.pk}/")
        assert page.locator("#replay-written").inner_text() == "1"
        assert page.locator("#replay-total").inner_text() == "5"
        keep(page, "replay")
        page.locator("#replay-cancel").click()
        page.locator("#replay-state").get_by_text("cancelled").wait_for()
        assert Replay.objects.get(pk=replay.pk).state == ReplayState.CANCELLED
    finally:
        context.close()
