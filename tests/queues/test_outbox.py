"""The write seam becomes outbox rows in the record's own transaction."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction

from queues.models import OutboxMessage, Queue, QueueLink
from tests.queues.outbox_helpers import linked_table
from zstorage import records
from zstorage.models import Table

pytestmark = pytest.mark.django_db


@pytest.fixture
def queue() -> Queue:
    return Queue.objects.create(name="order-events", type="database")


def test_a_committed_write_leaves_one_outbox_row_carrying_the_event(queue: Queue):
    table = linked_table(queue)
    ada = User.objects.create_user("ada")

    record = records.create_record(table, {"number": "A-1", "total": "9.5"}, actor=ada)
    records.update_record(table, record.pk, {"status": "paid"}, actor=ada)

    created, updated = OutboxMessage.objects.filter(queue=queue).order_by("id")
    assert created.ordering_key == f"orders:{record.pk}"
    assert created.body["message_id"] == str(created.message_id)
    body = updated.body
    assert body["handler"] == "on_order"
    assert body["event"] == "update"
    assert (body["table"], body["record_id"], body["version"]) == ("orders", record.pk, 2)
    assert body["data"] == {"number": "A-1", "total": "9.5", "status": "paid"}
    assert body["changed_fields"] == ["status"]
    assert body["actor"] == "ada"
    assert body["time"]
    uuid.UUID(body["message_id"])


def _write_then_give_up(table: Table, number: str) -> None:
    with transaction.atomic():
        records.create_record(table, {"number": number})
        raise RuntimeError("the caller gives up")


def test_a_rolled_back_write_leaves_nothing(queue: Queue):
    table = linked_table(queue)
    with pytest.raises(RuntimeError):
        _write_then_give_up(table, "A-1")
    assert OutboxMessage.objects.count() == 0


def test_an_invalid_write_leaves_nothing(queue: Queue):
    table = linked_table(queue)
    with pytest.raises(Exception, match="invalid"):
        records.create_record(table, {"total": "lots"})
    assert OutboxMessage.objects.count() == 0


def test_links_choose_their_kinds_of_change(queue: Queue):
    table = linked_table(queue, on_update=False)
    record = records.create_record(table, {"number": "A-1"})
    records.update_record(table, record.pk, {"status": "paid"})
    records.delete_record(table, record.pk)
    events = list(OutboxMessage.objects.order_by("id").values_list("body__event", flat=True))
    assert events == ["create", "delete"]


def test_a_link_filter_publishes_only_matching_records(queue: Queue):
    table = linked_table(queue, filter={"status": "paid", "total": {"$gte": 100}})
    records.create_record(table, {"number": "A-1", "status": "paid", "total": "150"})
    records.create_record(table, {"number": "A-2", "status": "new", "total": "150"})
    records.create_record(table, {"number": "A-3", "status": "paid", "total": "99.99"})
    cheap = records.create_record(table, {"number": "A-4", "status": "paid", "total": "5"})
    records.update_record(table, cheap.pk, {"total": "500"})  # now it matches

    numbers = list(
        OutboxMessage.objects.order_by("id").values_list("body__data__number", flat=True)
    )
    assert numbers == ["A-1", "A-4"]


def test_disabled_links_and_queues_publish_nothing(queue: Queue):
    table = linked_table(queue)
    QueueLink.objects.update(enabled=False)
    records.create_record(table, {"number": "A-1"})
    QueueLink.objects.update(enabled=True)
    Queue.objects.update(enabled=False)
    records.create_record(table, {"number": "A-2"})
    assert OutboxMessage.objects.count() == 0


def test_every_linked_queue_gets_its_own_row(queue: Queue):
    table = linked_table(queue)
    audit = Queue.objects.create(name="audit", type="database")
    QueueLink.objects.create(table=table, queue=audit, handler="audit")
    records.create_record(table, {"number": "A-1"})
    rows = {row.queue.name: row.body["handler"] for row in OutboxMessage.objects.all()}
    assert rows == {"order-events": "on_order", "audit": "audit"}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_notify_per_committed_transaction_and_none_for_a_rollback(queue: Queue):
    import psycopg

    table = linked_table(queue)
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as listener:
        listener.execute("LISTEN quaymaster_outbox")
        with transaction.atomic():
            for n in range(3):
                records.create_record(table, {"number": f"A-{n}"})
        with pytest.raises(RuntimeError):
            _write_then_give_up(table, "B-1")
        got = list(listener.notifies(timeout=1.0))
    assert len(got) == 1
    assert got[0].channel == "quaymaster_outbox"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_notify_dropped_with_a_savepoint_is_sent_again_by_the_next_write(queue: Queue):
    """The NOTIFY goes out inside the transaction; a savepoint rolled back takes it along, so
    the next write of the same transaction must issue it again."""
    import psycopg

    table = linked_table(queue)
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as listener:
        listener.execute("LISTEN quaymaster_outbox")
        with transaction.atomic():
            with pytest.raises(RuntimeError):
                _write_then_give_up(table, "A-1")  # a savepoint inside the outer transaction
            records.create_record(table, {"number": "A-2"})
            assert list(listener.notifies(timeout=0.3)) == [], "nothing before the commit"
        got = list(listener.notifies(timeout=1.0))
    assert len(got) == 1
    assert OutboxMessage.objects.count() == 1


@pytest.mark.postgres
def test_a_linked_write_costs_one_statement_more_than_an_unlinked_one(queue: Queue):
    """The outbox row and the relay's wake-up travel in one round trip with the write."""
    from django.test.utils import CaptureQueriesContext

    from zstorage import schema

    linked = linked_table(queue)
    plain = schema.create_table("Plain", "plain")
    schema.add_field(plain, name="Number", key="number", type="text", required=True)
    counts = {}
    for table in (plain, linked):
        records.create_record(table, {"number": "warm-up"})
        with CaptureQueriesContext(connection) as queries, transaction.atomic():
            records.create_record(table, {"number": "A-1"})
        counts[table.slug] = len(queries.captured_queries)
    assert counts["orders"] == counts["plain"] + 1
