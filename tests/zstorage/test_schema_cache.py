"""The per-process schema cache never lets a write use a schema that has changed: whatever a
write depends on (fields, rules, links, their queues) renews the table's schema token in the
database, however it is changed, and a write checks the token where it cannot be stale."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from queues.models import OutboxMessage, Queue, QueueLink
from tests.zstorage.builders import make_field, make_rule, make_table
from zstorage import records, schema_cache
from zstorage.errors import RecordInvalid
from zstorage.models import Field, Record, Rule, Table

pytestmark = pytest.mark.django_db


def token(table: Table) -> str:
    return Table.objects.values_list("schema_token", flat=True).get(pk=table.pk)


def stale_copy(table: Table) -> Table:
    """The table as another process loaded it before a change."""
    return Table.objects.get(pk=table.pk)


def test_each_kind_of_schema_change_renews_the_token_by_trigger_even_as_a_queryset_update():
    """The triggers are what the cache rests on; on SQLite a table rebuild by a later
    migration would drop them, and this test would tell."""
    table = make_table()
    field = make_field(table, "name")
    queue = Queue.objects.create(name="q", type="database")
    seen = {token(table)}

    def changed() -> bool:
        now = token(table)
        fresh = now not in seen
        seen.add(now)
        return fresh

    Field.objects.filter(pk=field.pk).update(required=True)
    assert changed(), "a field updated"
    Rule.objects.create(table=table, field=field, kind="min_length", params={"value": 2})
    assert changed(), "a rule added"
    Rule.objects.filter(table=table).delete()
    assert changed(), "a rule deleted"
    link = QueueLink.objects.create(table=table, queue=queue, handler="h")
    assert changed(), "a link added"
    QueueLink.objects.filter(pk=link.pk).update(enabled=False)
    assert changed(), "a link disabled"
    Queue.objects.filter(pk=queue.pk).update(enabled=False)
    assert changed(), "its queue disabled"
    Field.objects.filter(pk=field.pk).delete()
    assert changed(), "a field deleted"


def test_saving_a_table_loaded_before_a_change_keeps_the_new_token():
    table = make_table()
    before = stale_copy(table)
    make_field(table, "name")
    renewed = token(table)
    before.description = "edited"
    before.save()
    assert token(table) == renewed


def test_a_write_through_a_stale_table_uses_the_schema_of_now():
    table = make_table()
    make_field(table, "name")
    old = stale_copy(table)
    records.create_record(old, {"name": "Ada"})  # caches the schema under the old token

    make_field(table, "city", required=True, default="London")  # as another process would

    # The cached schema knows no "city": it would refuse the first and store no default.
    paris = records.create_record(old, {"name": "Grace", "city": "Paris"})
    default = records.create_record(old, {"name": "Alan"})
    assert Record.objects.get(pk=paris.pk).data == {"name": "Grace", "city": "Paris"}
    assert Record.objects.get(pk=default.pk).data == {"name": "Alan", "city": "London"}
    assert old.schema_token == token(table)
    with pytest.raises(RecordInvalid) as caught:
        records.create_record(old, {"name": "Alan", "town": "Leeds"})
    assert caught.value.errors == {"town": ["Unknown field 'town'."]}


def test_an_update_through_a_stale_table_uses_the_rules_of_now():
    table = make_table()
    name = make_field(table, "name")
    old = stale_copy(table)
    record = records.create_record(old, {"name": "Ada"})
    make_rule(table, "min_length", "At least five letters.", on=name, value=5)

    with pytest.raises(RecordInvalid) as caught:
        records.update_record(old, record.pk, {"name": "Bo"})
    assert caught.value.errors == {"name": ["At least five letters."]}


def test_link_and_queue_changes_reach_the_next_write_at_once():
    table = make_table()
    make_field(table, "name")
    queue = Queue.objects.create(name="events", type="database")
    old = stale_copy(table)
    records.create_record(old, {"name": "unlinked"})
    link = QueueLink.objects.create(table=table, queue=queue, handler="h")

    records.create_record(old, {"name": "linked"})
    Queue.objects.filter(pk=queue.pk).update(enabled=False)
    records.create_record(old, {"name": "queue disabled"})
    Queue.objects.filter(pk=queue.pk).update(enabled=True)
    QueueLink.objects.filter(pk=link.pk).update(filter={"name": "wanted"})
    records.create_record(old, {"name": "filtered out"})
    records.create_record(old, {"name": "wanted"})

    published = [row.body["data"]["name"] for row in OutboxMessage.objects.order_by("id")]
    assert published == ["linked", "wanted"]


def test_a_warm_write_reads_no_schema():
    table = make_table()
    make_field(table, "name")
    records.create_record(table, {"name": "warm"})
    with CaptureQueriesContext(connection) as queries:
        records.create_record(table, {"name": "Ada"})
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert "zstorage_field" not in sql
    assert "zstorage_rule" not in sql
    assert "queues_queuelink" not in sql


@pytest.mark.postgres
def test_a_linked_create_is_four_round_trips_on_postgresql():
    """BEGIN, the record with its audit row (one statement), the outbox row with its NOTIFY
    (one statement), COMMIT. (It was ten: the schema, the links and a savepoint each cost
    their own.)"""
    table = make_table()
    make_field(table, "name")
    queue = Queue.objects.create(name="events", type="database")
    QueueLink.objects.create(table=table, queue=queue, handler="h")
    records.create_record(table, {"name": "warm"})
    with CaptureQueriesContext(connection) as queries:
        records.create_record(table, {"name": "Ada"})
    assert len(queries.captured_queries) == 4, [q["sql"][:60] for q in queries.captured_queries]


def test_the_cache_holds_one_schema_per_table_and_starts_again_beyond_its_bound(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr(schema_cache, "MAX_TABLES", 2)
    monkeypatch.setattr(schema_cache, "_cache", {})
    tables = [make_table() for _ in range(3)]
    for table in tables:
        make_field(table, "name")
        records.create_record(table, {"name": "x"})
    assert len(schema_cache._cache) <= 2
