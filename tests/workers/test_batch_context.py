"""What a batch handler gets: messages that each settle on their own, and a ``ctx`` with the
services of a single handler's plus ``ack_all`` and ZStorage's bulk create."""

from __future__ import annotations

import uuid

import pytest

from queues.messages import Delivery
from queues.models import Queue
from tests.workers.test_context import Collect
from tests.zstorage.builders import captured_events, contacts_table
from workers.context import BatchContext, BatchMessage
from workers.errors import AlreadySettled
from workers.job import Outcome, Settlement
from zstorage.errors import BulkInvalid
from zstorage.models import Record

QUEUE = Queue(name="unsaved", max_attempts=3)


def batch(count: int, sink: Collect | None = None) -> tuple[list[BatchMessage], BatchContext]:
    messages = [
        BatchMessage(
            {"handler": "bulk", "n": n},
            queue=QUEUE,
            delivery=Delivery(str(uuid.uuid4()), b"{}", n + 1, {}, None),
            handler="bulk",
            events=sink,
        )
        for n in range(count)
    ]
    ctx = BatchContext(queue=QUEUE, handler="bulk", messages=messages, events=sink)
    return messages, ctx


def test_each_message_settles_once_and_ack_all_takes_the_rest() -> None:
    messages, ctx = batch(4)
    first, second, third, fourth = messages
    assert first["n"] == 0
    assert fourth.get("missing", "default") == "default"
    assert third.attempt == 3
    assert third.is_last_attempt

    second.retry(5)
    third.dead_letter("bad row")
    with pytest.raises(AlreadySettled):
        second.ack()
    assert ctx.unsettled == [first, fourth]
    ctx.ack_all()

    assert [m.outcome for m in messages] == [
        Outcome.ack(),
        Outcome.retry(5, "The handler asked for a retry."),
        Outcome.dead_letter("bad row"),
        Outcome.ack(),
    ]
    assert second.outcome is not None
    assert second.outcome.settlement == Settlement.RETRY
    assert not ctx.unsettled


def test_log_lines_name_their_message_or_the_batch() -> None:
    sink = Collect()
    messages, ctx = batch(2, sink)
    messages[1].log.warning("row %s skipped", 1)
    ctx.log.info("wrote %d rows", 2)
    assert [(e.message_id, e.detail) for e in sink.events] == [
        (messages[1].message_id, "row 1 skipped"),
        ("", "wrote 2 rows"),
    ]
    assert {e.handler for e in sink.events} == {"bulk"}


@pytest.mark.django_db
def test_bulk_create_writes_every_row_or_none_through_zstorage() -> None:
    table = contacts_table()
    _, ctx = batch(1)
    rows = [{"name": f"n{i}", "email": f"n{i}@example.com"} for i in range(3)]
    with captured_events() as changes:
        created = ctx.records.bulk_create("contacts", rows)
    assert [r.data["name"] for r in created] == ["n0", "n1", "n2"]
    assert [c.kind for c in changes] == ["create"] * 3, "each row emits its change event"

    clash = [
        {"name": "new", "email": "new@example.com"},
        {"name": "twin", "email": "n0@example.com"},
    ]
    with pytest.raises(BulkInvalid) as refused:
        ctx.records.bulk_create(table, clash)
    assert set(refused.value.errors) == {1}, "the clashing row, by index"
    assert Record.objects.filter(table=table).count() == 3, "none of the refused batch"
