"""The handler context: settling, ZStorage through its services, files, publishing, logs."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from queues.messages import Delivery
from queues.models import DatabaseMessage, Queue, QueueType
from tests.zstorage.builders import captured_events, contacts_table, make_field, make_table
from workers.context import Context
from workers.errors import AlreadySettled, MalformedMessage
from workers.events import Event, EventSink
from workers.job import Outcome, Settlement
from workers.models import EventKind, Level
from zstorage.errors import RecordInvalid, RecordNotFound
from zstorage.models import RecordChange


class Collect(EventSink):
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


def make_ctx(
    queue: Queue | None = None, attempt: int = 1, events: EventSink | None = None
) -> Context:
    delivery = Delivery(str(uuid.uuid4()), b"{}", attempt, {"source": "test"}, None)
    return Context(
        queue=queue or Queue(name="unsaved", max_attempts=3),
        delivery=delivery,
        handler="h",
        events=events,
    )


def test_settling_records_one_decision() -> None:
    ctx = make_ctx()
    assert ctx.outcome is None
    ctx.ack()
    assert ctx.outcome == Outcome.ack()
    with pytest.raises(AlreadySettled):
        ctx.retry()
    with pytest.raises(AlreadySettled):
        ctx.dead_letter("no")


def test_retry_and_dead_letter_carry_their_delay_and_reason() -> None:
    retried, dead = make_ctx(), make_ctx()
    retried.retry(delay=7)
    dead.dead_letter("bad customer")
    assert retried.outcome is not None
    assert retried.outcome.settlement == Settlement.RETRY
    assert retried.outcome.delay == 7
    assert dead.outcome == Outcome.dead_letter("bad customer")
    with pytest.raises(ValueError, match="negative"):
        make_ctx().retry(delay=-1)


def test_the_context_describes_the_delivery() -> None:
    ctx = make_ctx(attempt=3)
    assert ctx.attempt == 3
    assert ctx.max_attempts == 3
    assert ctx.is_last_attempt
    assert ctx.headers == {"source": "test"}
    assert ctx.queue.name == "unsaved"


def test_log_lines_become_lifecycle_events() -> None:
    sink = Collect()
    ctx = make_ctx(events=sink)
    ctx.log.info("pushed %s rows", 3)
    ctx.log.warning("slow")
    ctx.log.error("failed")
    assert [(e.kind, e.level, e.detail) for e in sink.events] == [
        (EventKind.LOG, Level.INFO, "pushed 3 rows"),
        (EventKind.LOG, Level.WARNING, "slow"),
        (EventKind.LOG, Level.ERROR, "failed"),
    ]
    assert {e.message_id for e in sink.events} == {ctx.message_id}
    assert {e.handler for e in sink.events} == {"h"}


@pytest.mark.django_db
def test_records_are_written_through_zstorage_services_and_emit_change_events() -> None:
    table = contacts_table()
    ctx = make_ctx()
    with captured_events() as changes:
        created = ctx.records.create("contacts", {"name": "Ada", "email": "ada@example.com"})
        updated = ctx.records.update("contacts", created.pk, {"age": 36})
    assert [c.kind for c in changes] == ["create", "update"], "the outbox's seam fired"
    assert updated.version == 2
    assert RecordChange.objects.filter(record_id=created.pk).count() == 2
    assert ctx.records.get(table, created.pk).data["age"] == 36
    with pytest.raises(RecordInvalid):
        ctx.records.create("contacts", {"name": "Twin", "email": "ada@example.com"})
    with pytest.raises(RecordNotFound):
        ctx.records.get("contacts", created.pk + 1000)
    with pytest.raises(RecordNotFound):
        ctx.records.get("no-such-table", 1)


@pytest.mark.django_db
def test_records_search_aggregate_and_children() -> None:
    contacts_table()
    ctx = make_ctx()
    for name, age in [("Ada", 36), ("Grace", 45), ("Linus", 28)]:
        ctx.records.create("contacts", {"name": name, "email": f"{name}@example.com", "age": age})
    older = ctx.records.search("contacts", {"age": {"$gt": 30}}, sort="-age")
    assert [r.data["name"] for r in older] == ["Grace", "Ada"]
    assert ctx.records.search("contacts", search="linus", limit=5)[0].data["name"] == "Linus"
    assert ctx.records.aggregate("contacts", "sum", "age") == [{"group": None, "value": 109}]

    orders = make_table("orders")
    make_field(orders, "customer", "reference", options={"table": "contacts"})
    ada = ctx.records.search("contacts", {"name": "Ada"})[0]
    order = ctx.records.create(orders, {"customer": ada.pk})
    assert ctx.records.children("contacts", ada.pk) == {"orders.customer": [order]}


def test_files_are_saved_to_the_default_storage(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path)
    settings.MEDIA_URL = "/media/"
    url = make_ctx().files.save("reports/out.txt", "hello")
    assert url == "/media/reports/out.txt"
    assert (tmp_path / "reports" / "out.txt").read_text() == "hello"
    second = make_ctx().files.save("reports/out.txt", b"again")
    assert second != url, "the storage keeps both"


@pytest.mark.django_db
def test_publish_chains_work_to_another_queue() -> None:
    target = Queue.objects.create(name="next-step", type=QueueType.DATABASE)
    ctx = make_ctx()
    message_id = ctx.publish("next-step", {"handler": "send_email", "to": "a@example.com"})
    row = DatabaseMessage.objects.get(queue=target)
    assert str(row.message_id) == message_id
    assert row.body == {"handler": "send_email", "to": "a@example.com"}
    with pytest.raises(MalformedMessage, match="handler"):
        ctx.publish("next-step", {"to": "nobody"})
    with pytest.raises(Queue.DoesNotExist):
        ctx.publish("no-such-queue", {"handler": "x"})
