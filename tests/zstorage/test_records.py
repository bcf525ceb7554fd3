"""The one write path: create, update, delete and bulk writes, optimistic concurrency, the
audit trail, references, and the ``record_changed`` event seam."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.zstorage.builders import (
    captured_events,
    contacts_table,
    make_field,
    make_rule,
    make_table,
    make_user,
)
from zstorage import records
from zstorage.errors import (
    BulkInvalid,
    RecordInvalid,
    RecordNotFound,
    RecordReferenced,
    VersionConflict,
)
from zstorage.events import RecordChanged, record_changed
from zstorage.models import EventKind, Record, RecordChange, Table
from zstorage.validation import REQUIRED_MESSAGE

pytestmark = pytest.mark.django_db

ADA = {"name": "Ada", "email": "Ada@Example.com", "age": "36"}
TAKEN = "This email is already registered."


def audit(table: Table, record_id: int) -> list[tuple[str, int, dict[str, Any], int | None]]:
    return [
        (change.kind, change.version, change.changes, change.actor_id)
        for change in RecordChange.objects.filter(table=table, record_id=record_id)
    ]


# Create, update, delete -------------------------------------------------------------------


def test_create_stores_canonical_data_at_version_one():
    table = contacts_table()
    user = make_user()
    record = records.create_record(table, ADA, actor=user)

    stored = Record.objects.get(pk=record.pk)
    assert stored.table == table
    assert stored.data == {"name": "Ada", "email": "Ada@example.com", "age": 36}
    assert stored.version == 1
    assert stored.created_by == user
    assert stored.updated_by == user


def test_an_invalid_create_writes_nothing():
    table = contacts_table()
    with captured_events() as events, pytest.raises(RecordInvalid) as caught:
        records.create_record(table, {"email": "nope"})
    assert caught.value.errors == {
        "name": [REQUIRED_MESSAGE],
        "email": ["Enter a valid email address."],
    }
    assert caught.value.code == "invalid_record"
    assert not Record.objects.exists()
    assert not RecordChange.objects.exists()
    assert events == []


def test_update_merges_the_change_and_bumps_the_version():
    table = contacts_table()
    record = records.create_record(table, ADA)
    editor = make_user("grace")

    updated = records.update_record(table, record.pk, {"age": 37}, actor=editor)

    stored = Record.objects.get(pk=record.pk)
    assert updated.version == stored.version == 2
    assert stored.data == {"name": "Ada", "email": "Ada@example.com", "age": 37}
    assert stored.updated_by == editor
    assert stored.created_by is None


def test_update_with_replace_drops_what_is_not_given():
    table = contacts_table()
    record = records.create_record(table, ADA)
    records.update_record(table, record.pk, {"name": "Ada L."}, replace=True)
    assert Record.objects.get(pk=record.pk).data == {"name": "Ada L."}


def test_a_null_in_an_update_clears_the_value():
    table = contacts_table()
    record = records.create_record(table, ADA)
    records.update_record(table, record.pk, {"age": None})
    assert Record.objects.get(pk=record.pk).data == {"name": "Ada", "email": "Ada@example.com"}


def test_an_invalid_update_leaves_the_record_untouched():
    table = contacts_table()
    record = records.create_record(table, ADA)
    with pytest.raises(RecordInvalid) as caught:
        records.update_record(table, record.pk, {"name": "", "age": "old"})
    assert caught.value.errors == {
        "name": [REQUIRED_MESSAGE],
        "age": ["Enter a whole number."],
    }
    stored = Record.objects.get(pk=record.pk)
    assert (stored.version, stored.data["age"]) == (1, 36)
    assert RecordChange.objects.count() == 1


def test_delete_removes_the_record():
    table = contacts_table()
    record = records.create_record(table, ADA)
    records.delete_record(table, record.pk)
    assert not Record.objects.filter(pk=record.pk).exists()


def test_a_record_of_another_table_is_not_found():
    contacts, other = contacts_table(), make_table()
    record = records.create_record(contacts, ADA)
    with pytest.raises(RecordNotFound):
        records.update_record(other, record.pk, {"name": "x"})
    with pytest.raises(RecordNotFound) as caught:
        records.delete_record(other, record.pk)
    assert caught.value.status == 404
    with pytest.raises(RecordNotFound):
        records.update_record(contacts, record.pk + 1000, {"name": "x"})
    assert Record.objects.get(pk=record.pk).version == 1


# Optimistic concurrency -------------------------------------------------------------------


def test_an_update_with_the_current_version_succeeds():
    table = contacts_table()
    record = records.create_record(table, ADA)
    updated = records.update_record(table, record.pk, {"age": 40}, expected_version=1)
    assert updated.version == 2


def test_an_update_with_a_stale_version_is_a_conflict_and_changes_nothing():
    table = contacts_table()
    record = records.create_record(table, ADA)
    records.update_record(table, record.pk, {"age": 40})  # someone else saved first

    with captured_events() as events, pytest.raises(VersionConflict) as caught:
        records.update_record(table, record.pk, {"age": 50}, expected_version=1)

    conflict = caught.value
    assert (conflict.status, conflict.code, conflict.current) == (409, "version_conflict", 2)
    assert str(conflict) == f"Record {record.pk} is at version 2, not 1: reload and retry."
    stored = Record.objects.get(pk=record.pk)
    assert (stored.version, stored.data["age"]) == (2, 40)
    assert RecordChange.objects.count() == 2
    assert events == []


def test_a_delete_with_a_stale_version_is_a_conflict():
    table = contacts_table()
    record = records.create_record(table, ADA)
    records.update_record(table, record.pk, {"age": 40})
    with pytest.raises(VersionConflict):
        records.delete_record(table, record.pk, expected_version=1)
    assert Record.objects.filter(pk=record.pk).exists()
    records.delete_record(table, record.pk, expected_version=2)
    assert not Record.objects.filter(pk=record.pk).exists()


@pytest.mark.parametrize(
    "change",
    [
        {"age": 36},
        {"age": "36", "email": "Ada@EXAMPLE.COM"},  # the same once canonical
        {},
        {"name": "Ada"},
    ],
)
def test_a_no_op_update_writes_nothing_and_emits_nothing(change: dict[str, Any]):
    table = contacts_table()
    record = records.create_record(table, ADA)
    before = Record.objects.get(pk=record.pk)

    with captured_events() as events, CaptureQueriesContext(connection) as queries:
        result = records.update_record(table, record.pk, change, expected_version=1)

    writes = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]
    assert writes == []
    assert events == []
    assert result.version == 1
    after = Record.objects.get(pk=record.pk)
    assert (after.version, after.updated_at, after.data) == (1, before.updated_at, before.data)
    assert RecordChange.objects.count() == 1


# Audit trail ------------------------------------------------------------------------------


def test_the_audit_trail_keeps_every_write_and_outlives_the_record():
    table = contacts_table()
    ada, grace = make_user("ada"), make_user("grace")
    record = records.create_record(table, ADA, actor=ada)
    records.update_record(table, record.pk, {"age": 37, "name": "Ada L."}, actor=grace)
    records.update_record(table, record.pk, {"email": None}, actor=grace)
    records.delete_record(table, record.pk, actor=ada)

    assert audit(table, record.pk) == [
        (
            EventKind.CREATE,
            1,
            {"age": [None, 36], "email": [None, "Ada@example.com"], "name": [None, "Ada"]},
            ada.pk,
        ),
        (EventKind.UPDATE, 2, {"age": [36, 37], "name": ["Ada", "Ada L."]}, grace.pk),
        (EventKind.UPDATE, 3, {"email": ["Ada@example.com", None]}, grace.pk),
        (EventKind.DELETE, 4, {"age": [37, None], "name": ["Ada L.", None]}, ada.pk),
    ]


def test_an_anonymous_or_absent_actor_is_recorded_as_nobody():
    table = contacts_table()
    record = records.create_record(table, ADA, actor=AnonymousUser())
    records.update_record(table, record.pk, {"age": 1})
    assert [actor for *_, actor in audit(table, record.pk)] == [None, None]
    assert Record.objects.get(pk=record.pk).created_by is None


# Bulk writes ------------------------------------------------------------------------------


def test_bulk_create_writes_every_row():
    table = contacts_table()
    with captured_events() as events:
        created = records.bulk_create(
            table, [{"name": "Ada"}, {"name": "Grace", "email": "grace@example.com"}]
        )
    assert [r.data["name"] for r in created] == ["Ada", "Grace"]
    assert list(Record.objects.values_list("pk", flat=True)) == [r.pk for r in created]
    assert [(e.kind, e.record_id) for e in events] == [
        (EventKind.CREATE, created[0].pk),
        (EventKind.CREATE, created[1].pk),
    ]
    assert RecordChange.objects.count() == 2


def test_bulk_create_is_all_or_nothing_with_errors_per_row():
    table = contacts_table()
    records.create_record(table, {"name": "Ada", "email": "ada@example.com"})
    rows = [
        {"name": "Grace"},
        {"email": "grace@example.com"},
        {"name": "Linus", "age": "young"},
        {"name": "Ada again", "email": "ada@EXAMPLE.com"},
        {"name": "Alan"},
    ]
    with pytest.raises(BulkInvalid) as caught:
        records.bulk_create(table, rows)

    assert caught.value.code == "invalid_bulk"
    assert caught.value.errors == {
        1: {"name": [REQUIRED_MESSAGE]},
        2: {"age": ["Enter a whole number."]},
        3: {"email": [TAKEN]},
    }
    assert Record.objects.count() == 1
    assert RecordChange.objects.count() == 1


def test_bulk_create_refuses_a_clash_between_two_rows_of_the_batch():
    table = contacts_table()
    rows = [
        {"name": "Ada", "email": "ada@example.com"},
        {"name": "Grace", "email": "grace@example.com"},
        {"name": "Ada too", "email": "ada@EXAMPLE.com"},
    ]
    with pytest.raises(BulkInvalid) as caught:
        records.bulk_create(table, rows)
    assert caught.value.errors == {2: {"email": [TAKEN]}}
    assert not Record.objects.exists()
    assert not RecordChange.objects.exists()


def test_bulk_update_writes_every_row():
    table = contacts_table()
    ada, grace = records.bulk_create(table, [{"name": "Ada"}, {"name": "Grace"}])
    updated = records.bulk_update(
        table,
        [
            {"id": ada.pk, "data": {"age": 36}, "version": 1},
            {"id": grace.pk, "data": {"age": 45}},
        ],
    )
    assert [(r.pk, r.version, r.data["age"]) for r in updated] == [
        (ada.pk, 2, 36),
        (grace.pk, 2, 45),
    ]


def test_bulk_update_is_all_or_nothing_with_errors_per_row():
    table = contacts_table()
    ada, grace, alan = records.bulk_create(
        table, [{"name": "Ada"}, {"name": "Grace"}, {"name": "Alan"}]
    )
    with pytest.raises(BulkInvalid) as caught:
        records.bulk_update(
            table,
            [
                {"id": ada.pk, "data": {"email": "shared@example.com"}},
                {"id": grace.pk, "data": {"age": "old"}},
                {"id": alan.pk, "data": {"email": "shared@Example.COM"}},
            ],
        )
    assert caught.value.errors == {
        1: {"age": ["Enter a whole number."]},
        2: {"email": [TAKEN]},
    }
    assert [(r.version, r.data) for r in Record.objects.all()] == [
        (1, {"name": "Ada"}),
        (1, {"name": "Grace"}),
        (1, {"name": "Alan"}),
    ]
    assert RecordChange.objects.filter(kind=EventKind.UPDATE).count() == 0


def test_bulk_update_with_one_stale_version_writes_nothing():
    table = contacts_table()
    ada, grace = records.bulk_create(table, [{"name": "Ada"}, {"name": "Grace"}])
    records.update_record(table, grace.pk, {"age": 1})
    with pytest.raises(VersionConflict):
        records.bulk_update(
            table,
            [
                {"id": ada.pk, "data": {"age": 36}, "version": 1},
                {"id": grace.pk, "data": {"age": 45}, "version": 1},
            ],
        )
    assert Record.objects.get(pk=ada.pk).version == 1
    assert Record.objects.get(pk=grace.pk).data["age"] == 1


# References -------------------------------------------------------------------------------


def people_and_orders() -> tuple[Table, Table]:
    people = make_table("people")
    make_field(people, "name")
    orders = make_table("orders")
    make_field(orders, "item")
    make_field(orders, "buyer", "reference", options={"table": "people"})
    return people, orders


def test_a_reference_must_point_at_an_existing_record_of_the_right_table():
    people, orders = people_and_orders()
    ada = records.create_record(people, {"name": "Ada"})
    order = records.create_record(orders, {"item": "loom"})

    for missing in (ada.pk + 1000, order.pk):
        with pytest.raises(RecordInvalid) as caught:
            records.create_record(orders, {"item": "gear", "buyer": missing})
        # The referenced table stays unnamed: the writer may not be granted it.
        assert caught.value.errors == {"buyer": [f"No record {missing} in the referenced table."]}

    linked = records.create_record(orders, {"item": "gear", "buyer": {"id": str(ada.pk)}})
    assert linked.data["buyer"] == ada.pk
    with pytest.raises(RecordInvalid):
        records.update_record(orders, linked.pk, {"buyer": ada.pk + 1000})
    assert Record.objects.get(pk=linked.pk).data["buyer"] == ada.pk


def test_a_referenced_record_cannot_be_deleted():
    people, orders = people_and_orders()
    ada = records.create_record(people, {"name": "Ada"})
    order = records.create_record(orders, {"item": "loom", "buyer": ada.pk})

    with captured_events() as events, pytest.raises(RecordReferenced) as caught:
        records.delete_record(people, ada.pk)
    assert (caught.value.status, caught.value.code) == (409, "record_referenced")
    assert Record.objects.filter(pk=ada.pk).exists()
    assert events == []

    records.update_record(orders, order.pk, {"buyer": None})
    records.delete_record(people, ada.pk)
    assert not Record.objects.filter(pk=ada.pk).exists()


# The event seam ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_every_write_emits_one_event_from_inside_its_transaction():
    table = contacts_table()
    user = make_user()
    seen: list[tuple[RecordChanged, bool, bool, bool]] = []

    def receiver(sender: object, events: list[RecordChanged], **kwargs: Any) -> None:
        assert sender is RecordChanged
        for event in events:
            seen.append(
                (
                    event,
                    connection.in_atomic_block,
                    Record.objects.filter(pk=event.record_id, version=event.version).exists(),
                    RecordChange.objects.filter(
                        record_id=event.record_id, version=event.version
                    ).exists(),
                )
            )

    record_changed.connect(receiver, weak=False)
    try:
        record = records.create_record(table, ADA, actor=user)
        records.update_record(table, record.pk, {"age": 37}, actor=user)
        records.update_record(table, record.pk, {"age": 37})  # no-op: no event
        records.delete_record(table, record.pk)
    finally:
        record_changed.disconnect(receiver)

    assert not connection.in_atomic_block
    events = [event for event, *_ in seen]
    assert [(e.kind, e.table, e.record_id, e.version) for e in events] == [
        (EventKind.CREATE, table, record.pk, 1),
        (EventKind.UPDATE, table, record.pk, 2),
        (EventKind.DELETE, table, record.pk, 3),
    ]
    # Each receiver ran inside the write's transaction, after the record and audit row
    # were written (a deleted record is already gone).
    assert [flags for _, *flags in seen] == [
        [True, True, True],
        [True, True, True],
        [True, False, True],
    ]
    created, updated, deleted = events
    canonical = {"name": "Ada", "email": "Ada@example.com", "age": 36}
    assert (created.old, created.new) == (None, canonical)
    assert created.changed_fields == ["age", "email", "name"]
    assert created.actor == user
    assert (updated.old, updated.new) == (canonical, {**canonical, "age": 37})
    assert updated.changed_fields == ["age"]
    assert updated.data == {**canonical, "age": 37}
    assert (deleted.old, deleted.new) == ({**canonical, "age": 37}, None)
    assert deleted.data == {**canonical, "age": 37}
    assert deleted.actor is None
    assert created.at <= updated.at <= deleted.at


class Refused(Exception):
    pass


def refuse(sender: object, events: list[RecordChanged], **kwargs: Any) -> None:
    raise Refused(events[0].kind)


@pytest.mark.django_db(transaction=True)
def test_a_receiver_that_raises_rolls_the_create_back():
    table = contacts_table()
    record_changed.connect(refuse)
    try:
        with pytest.raises(Refused):
            records.create_record(table, ADA)
        with pytest.raises(Refused):
            records.bulk_create(table, [{"name": "Grace"}, {"name": "Alan"}])
    finally:
        record_changed.disconnect(refuse)
    assert not Record.objects.exists()
    assert not RecordChange.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_receiver_that_raises_rolls_the_update_and_the_delete_back():
    table = contacts_table()
    record = records.create_record(table, ADA)
    record_changed.connect(refuse)
    try:
        with pytest.raises(Refused):
            records.update_record(table, record.pk, {"age": 99})
        with pytest.raises(Refused):
            records.delete_record(table, record.pk)
    finally:
        record_changed.disconnect(refuse)
    stored = Record.objects.get(pk=record.pk)
    assert (stored.version, stored.data["age"]) == (1, 36)
    assert audit(table, record.pk) == [
        (EventKind.CREATE, 1, {"age": [None, 36], "email": [None, "Ada@example.com"],
                               "name": [None, "Ada"]}, None),
    ]  # fmt: skip


def test_a_unique_rule_on_one_table_does_not_bind_another():
    first, second = contacts_table("first"), contacts_table("second")
    records.create_record(first, {"name": "Ada", "email": "ada@example.com"})
    records.create_record(second, {"name": "Ada", "email": "ada@example.com"})
    assert Record.objects.count() == 2


def test_a_rule_message_reaches_the_caller_for_a_table_level_unique_rule():
    table = make_table()
    make_field(table, "first")
    make_field(table, "last")
    make_rule(table, "unique_together", "Already here.", fields=["first", "last"])
    records.create_record(table, {"first": "Ada", "last": "L"})
    with pytest.raises(RecordInvalid) as caught:
        records.update_record(
            table, records.create_record(table, {"first": "Ada"}).pk, {"last": "L"}
        )
    assert caught.value.errors == {"first": ["Already here."]}
