"""Schema changes at run time convert every stored value or are refused, naming what stands
in the way; uniqueness indexes follow renames, retypes and rule deletions."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from tests.zstorage.builders import (
    captured_events,
    make_field,
    make_rule,
    make_table,
)
from zstorage import records, schema
from zstorage.errors import RecordInvalid, RecordReferenced, SchemaChangeRefused
from zstorage.indexes import index_name
from zstorage.models import Field, Record, RecordChange, Rule, Table
from zstorage.schema import SchemaInvalid

pytestmark = pytest.mark.django_db


def index_names() -> set[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'zstorage_record'")
        else:
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' "
                "AND tbl_name = 'zstorage_record'"
            )
        return {name for (name,) in cursor.fetchall()}


def data_and_versions(table: Table) -> list[tuple[dict[str, Any], int]]:
    return [(r.data, r.version) for r in Record.objects.filter(table=table)]


def no_precheck(monkeypatch: pytest.MonkeyPatch) -> None:
    """Leave uniqueness to the database's index alone."""
    monkeypatch.setattr(records, "_check_unique", lambda *args: None)


def refusal(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(SchemaChangeRefused) as caught:
        call(*args, **kwargs)
    assert caught.value.code == "schema_change_refused"
    return caught.value.message


# Adding fields ----------------------------------------------------------------------------


def test_a_required_field_on_a_table_with_records_needs_a_default():
    table = make_table("people")
    make_field(table, "name")
    records.create_record(table, {"name": "Ada"})

    assert refusal(make_field, table, "country", required=True) == (
        "Table 'people' has records without 'country'; give a default to fill them, "
        "or add the field as optional."
    )
    assert not table.fields.filter(key="country").exists()


def test_a_required_field_with_a_default_back_fills_existing_records_quietly():
    table = make_table()
    make_field(table, "name")
    ada = records.create_record(table, {"name": "Ada"})
    records.create_record(table, {"name": "Grace"})
    records.update_record(table, ada.pk, {"name": "Ada L."})

    with captured_events() as events:
        make_field(table, "country", required=True, default="UK")

    # A schema migration: values filled, versions kept, nothing published or audited.
    assert data_and_versions(table) == [
        ({"name": "Ada L.", "country": "UK"}, 2),
        ({"name": "Grace", "country": "UK"}, 1),
    ]
    assert events == []
    assert RecordChange.objects.count() == 3


def test_a_required_field_on_an_empty_table_needs_no_default():
    table = make_table()
    make_field(table, "name", required=True)
    assert table.fields.get().required


@pytest.mark.parametrize(
    ("attrs", "errors"),
    [
        ({"key": "Name", "type": "text"}, "key"),
        ({"key": "1st", "type": "text"}, "key"),
        ({"key": "name", "type": "colour"}, "type"),
        ({"key": "age", "type": "integer", "default": "old"}, "default"),
        ({"key": "status", "type": "choice"}, "options"),
        ({"key": "price", "type": "decimal", "options": {"places": 20}}, "options"),
    ],
)
def test_bad_field_definitions_are_refused(attrs: dict[str, Any], errors: str):
    table = make_table()
    with pytest.raises(SchemaInvalid) as caught:
        schema.add_field(table, name="A field", **attrs)
    assert set(caught.value.errors) == {errors}
    assert not table.fields.exists()


def test_a_field_key_is_unique_per_table():
    table = make_table("people")
    make_field(table, "name")
    with pytest.raises(SchemaInvalid) as caught:
        make_field(table, "name", "integer")
    assert caught.value.errors == {"key": ["Table 'people' already has a field 'name'."]}
    make_field(make_table(), "name")


def test_a_reference_to_a_missing_table_is_refused():
    table = make_table()
    with pytest.raises(SchemaInvalid) as caught:
        make_field(table, "owner", "reference", options={"table": "ghosts"})
    assert caught.value.errors == {"options": ["No table 'ghosts' to reference."]}
    make_table("ghosts")
    make_field(table, "owner", "reference", options={"table": "ghosts"})


# Renaming a key ---------------------------------------------------------------------------


def test_renaming_a_key_rewrites_the_data_and_keeps_its_unique_index(
    monkeypatch: pytest.MonkeyPatch,
):
    table = make_table()
    email = make_field(table, "email", "email")
    rule = make_rule(table, "unique", "Email taken.", on=email)
    ada = records.create_record(table, {"email": "ada@example.com"})

    with captured_events() as events:
        schema.update_field(email, key="mail")

    assert data_and_versions(table) == [({"mail": "ada@example.com"}, 1)]
    assert events == []
    assert index_name(rule) in index_names()
    with pytest.raises(RecordInvalid) as caught:
        records.create_record(table, {"email": "grace@example.com"})
    assert caught.value.errors == {"email": ["Unknown field 'email'."]}

    no_precheck(monkeypatch)  # the index itself, rebuilt on the new key, refuses
    with pytest.raises(RecordInvalid) as caught:
        records.create_record(table, {"mail": "ada@example.com"})
    assert caught.value.errors == {"mail": ["Email taken."]}
    records.update_record(table, ada.pk, {"mail": "ada@example.org"})
    records.create_record(table, {"mail": "ada@example.com"})


def test_renaming_a_key_carries_unique_together_along(monkeypatch: pytest.MonkeyPatch):
    table = make_table()
    first = make_field(table, "first")
    make_field(table, "last")
    rule = make_rule(table, "unique_together", "Exists.", fields=["first", "last"])
    records.create_record(table, {"first": "Ada", "last": "Lovelace"})

    schema.update_field(first, key="given")

    rule.refresh_from_db()
    assert rule.params == {"fields": ["given", "last"]}
    no_precheck(monkeypatch)
    with pytest.raises(RecordInvalid) as caught:
        records.create_record(table, {"given": "Ada", "last": "Lovelace"})
    assert caught.value.errors == {"given": ["Exists."]}
    records.create_record(table, {"given": "Ada", "last": "Byron"})


def test_renaming_to_a_taken_key_or_a_key_an_expression_uses_is_refused():
    table = make_table("people")
    start = make_field(table, "start", "date")
    end = make_field(table, "end", "date")
    make_field(table, "note")
    make_rule(table, "expression", "End after start.", expression="end >= start")
    records.create_record(table, {"start": "2024-01-01", "end": "2024-02-01"})

    with pytest.raises(SchemaInvalid):
        schema.update_field(Field.objects.get(pk=end.pk), key="note")
    assert "uses 'start'" in refusal(schema.update_field, start, key="begin")
    assert data_and_versions(table) == [({"start": "2024-01-01", "end": "2024-02-01"}, 1)]
    assert set(table.fields.values_list("key", flat=True)) == {"start", "end", "note"}


# Changing a type --------------------------------------------------------------------------


def test_text_holding_numbers_converts_to_integer():
    table = make_table()
    qty = make_field(table, "qty")
    records.create_record(table, {"qty": "12"})
    records.create_record(table, {"qty": " 7 "})
    records.create_record(table, {})

    with captured_events() as events:
        schema.update_field(qty, type="integer")

    assert data_and_versions(table) == [({"qty": 12}, 1), ({"qty": 7}, 1), ({}, 1)]
    assert events == []
    with pytest.raises(RecordInvalid) as caught:
        records.create_record(table, {"qty": "a dozen"})
    assert caught.value.errors == {"qty": ["Enter a whole number."]}


def test_a_value_that_cannot_convert_refuses_the_change_and_names_the_record():
    table = make_table()
    qty = make_field(table, "qty")
    records.create_record(table, {"qty": "12"})
    bad = records.create_record(table, {"qty": "abc"})

    message = refusal(schema.update_field, qty, type="integer")

    assert message == (
        f"1 values of 'qty' cannot become integer: record {bad.pk}: 'abc' (Enter a whole number.)"
    )
    assert data_and_versions(table) == [({"qty": "12"}, 1), ({"qty": "abc"}, 1)]
    assert Field.objects.get(pk=qty.pk).type == "text"


def test_a_field_with_length_rules_keeps_a_type_that_has_a_length():
    table = make_table()
    code = make_field(table, "code")
    make_rule(table, "max_length", "Short codes.", on=code, value=3)
    records.create_record(table, {"code": "12"})

    assert refusal(schema.update_field, code, type="integer") == (
        "Integer values have no length: delete the length rules of 'code' first."
    )
    assert data_and_versions(table) == [({"code": "12"}, 1)]
    schema.update_field(Field.objects.get(pk=code.pk), type="long_text")


def test_a_conversion_that_makes_unique_values_collide_is_refused():
    table = make_table()
    code = make_field(table, "code")
    rule = make_rule(table, "unique", "Code taken.", on=code)
    records.create_record(table, {"code": "1"})
    records.create_record(table, {"code": "01"})

    assert refusal(schema.update_field, code, type="integer") == (
        "Existing records share values of code; make them unique first."
    )
    assert data_and_versions(table) == [({"code": "1"}, 1), ({"code": "01"}, 1)]
    assert Field.objects.get(pk=code.pk).type == "text"
    assert index_name(rule) in index_names()
    with pytest.raises(RecordInvalid):
        records.create_record(table, {"code": "1"})


def test_a_conversion_to_reference_checks_that_each_record_exists():
    people = make_table("people")
    make_field(people, "name")
    ada = records.create_record(people, {"name": "Ada"})
    orders = make_table("orders")
    buyer = make_field(orders, "buyer", "integer")
    records.create_record(orders, {"buyer": ada.pk})
    ghost = records.create_record(orders, {"buyer": ada.pk + 1000})

    message = refusal(schema.update_field, buyer, type="reference", options={"table": "people"})
    assert f"record {ghost.pk}: {ada.pk + 1000}" in message
    assert f"No record {ada.pk + 1000} in the referenced table." in message
    assert Field.objects.get(pk=buyer.pk).type == "integer"

    records.delete_record(orders, ghost.pk)
    schema.update_field(buyer, type="reference", options={"table": "people"})
    with pytest.raises(RecordReferenced):
        records.delete_record(people, ada.pk)


def test_removing_a_choice_in_use_is_refused_and_an_unused_one_is_not():
    table = make_table()
    status = make_field(table, "status", "choice", options={"choices": ["new", "open", "done"]})
    tags = make_field(table, "tags", "multi_choice", options={"choices": ["a", "b", "c"]})
    record = records.create_record(table, {"status": "open", "tags": ["a", "c"]})

    message = refusal(schema.update_field, status, options={"choices": ["new", "done"]})
    assert f"record {record.pk}: 'open'" in message
    assert "Choose one of: new, done." in message
    message = refusal(schema.update_field, tags, options={"choices": ["a", "b"]})
    assert f"record {record.pk}: ['a', 'c']" in message
    assert Field.objects.get(pk=status.pk).options == {"choices": ["new", "open", "done"]}

    schema.update_field(Field.objects.get(pk=status.pk), options={"choices": ["open", "done"]})
    schema.update_field(Field.objects.get(pk=tags.pk), options={"choices": ["c", "a"]})
    assert data_and_versions(table) == [({"status": "open", "tags": ["c", "a"]}, 1)]


# Deleting fields and tables ---------------------------------------------------------------


def test_deleting_a_field_holding_data_needs_confirmation():
    table = make_table()
    make_field(table, "name")
    note = make_field(table, "note")
    make_rule(table, "max_length", "Short notes.", on=note, value=10)
    records.create_record(table, {"name": "Ada", "note": "first"})
    records.create_record(table, {"name": "Grace"})

    assert refusal(schema.delete_field, note) == (
        "1 records hold a value for 'note'; confirm to delete those values."
    )
    assert data_and_versions(table)[0] == ({"name": "Ada", "note": "first"}, 1)

    assert schema.delete_field(note, confirm=True) == 1
    assert data_and_versions(table) == [({"name": "Ada"}, 1), ({"name": "Grace"}, 1)]
    assert not Field.objects.filter(pk=note.pk).exists()
    assert not Rule.objects.exists()


def test_deleting_an_empty_field_needs_no_confirmation():
    table = make_table()
    make_field(table, "name")
    note = make_field(table, "note")
    records.create_record(table, {"name": "Ada"})
    assert schema.delete_field(note) == 0
    assert list(table.fields.values_list("key", flat=True)) == ["name"]


def test_deleting_a_unique_field_drops_its_index():
    table = make_table()
    email = make_field(table, "email", "email")
    rule = make_rule(table, "unique", "Taken.", on=email)
    assert index_name(rule) in index_names()
    schema.delete_field(email)
    assert index_name(rule) not in index_names()


def test_a_field_that_a_unique_together_rule_or_an_expression_uses_stays():
    table = make_table()
    first = make_field(table, "first")
    make_field(table, "last")
    low = make_field(table, "low", "integer")
    make_field(table, "high", "integer")
    make_rule(table, "unique_together", "Exists.", fields=["first", "last"])
    make_rule(table, "expression", "Low below high.", expression="low < high")

    assert refusal(schema.delete_field, first) == (
        "A unique-together rule uses 'first'; delete it first."
    )
    assert "uses 'low'" in refusal(schema.delete_field, low)
    assert table.fields.count() == 4


def test_deleting_a_table_with_records_needs_confirmation():
    table = make_table("people")
    email = make_field(table, "email", "email")
    rule = make_rule(table, "unique", "Taken.", on=email)
    records.create_record(table, {"email": "ada@example.com"})

    assert refusal(schema.delete_table, table) == (
        "Table 'people' has 1 records; confirm to delete them with it."
    )
    assert Table.objects.filter(pk=table.pk).exists()

    schema.delete_table(table, confirm=True)
    assert not Table.objects.filter(slug="people").exists()
    assert not Record.objects.exists()
    assert not RecordChange.objects.exists()
    assert index_name(rule) not in index_names()


def test_a_table_that_others_reference_cannot_be_deleted_or_renamed():
    people = make_table("people")
    orders = make_table("orders")
    make_field(orders, "buyer", "reference", options={"table": "people"})

    assert refusal(schema.delete_table, people) == (
        "Other tables reference this table; delete those fields first."
    )
    assert "cannot be renamed" in refusal(schema.update_table, people, slug="persons")
    assert Table.objects.get(pk=people.pk).slug == "people"
    schema.delete_table(make_table("empty"))


# Rules and their indexes ------------------------------------------------------------------


def test_a_unique_rule_on_duplicate_data_is_refused():
    table = make_table()
    email = make_field(table, "email", "email")
    records.create_record(table, {"email": "ada@example.com"})
    records.create_record(table, {"email": "ada@example.com"})
    records.create_record(table, {})
    records.create_record(table, {})
    before = index_names()

    assert refusal(make_rule, table, "unique", "Taken.", on=email) == (
        "Existing records share values of email; make them unique first."
    )
    assert not Rule.objects.exists()
    assert index_names() == before


def test_a_unique_together_rule_on_duplicate_pairs_is_refused():
    table = make_table()
    make_field(table, "first")
    make_field(table, "last")
    records.create_record(table, {"first": "Ada", "last": "L"})
    records.create_record(table, {"first": "Ada", "last": "L"})
    records.create_record(table, {"first": "Ada"})
    records.create_record(table, {"first": "Ada"})

    assert "share values of first, last" in refusal(
        make_rule, table, "unique_together", "Exists.", fields=["first", "last"]
    )
    assert not Rule.objects.exists()


def test_deleting_a_unique_rule_drops_its_index_and_allows_duplicates(
    monkeypatch: pytest.MonkeyPatch,
):
    table = make_table()
    email = make_field(table, "email", "email")
    rule = make_rule(table, "unique", "Taken.", on=email)
    records.create_record(table, {"email": "ada@example.com"})
    assert index_name(rule) in index_names()

    schema.delete_rule(rule)

    assert index_name(rule) not in index_names()
    no_precheck(monkeypatch)
    records.create_record(table, {"email": "ada@example.com"})
    assert Record.objects.count() == 2


def test_a_display_field_names_records_and_follows_its_field():
    table = make_table("people")
    make_field(table, "name")
    make_field(table, "email", "email")
    make_field(table, "age", "integer")

    schema.update_table(table, display_field="email")
    table.refresh_from_db()
    assert table.display_field == "email"
    for wrong in ("age", "nope"):
        with pytest.raises(schema.SchemaInvalid) as refused:
            schema.update_table(table, display_field=wrong)
        assert "choose one of name, email" in str(refused.value.errors["display_field"])
    table.refresh_from_db()
    assert table.display_field == "email"

    schema.update_field(table.fields.get(key="email"), key="mail")
    table.refresh_from_db()
    assert table.display_field == "mail", "a renamed field stays the display field"
    schema.delete_field(table.fields.get(key="mail"), confirm=True)
    table.refresh_from_db()
    assert table.display_field is None, "a deleted one leaves the default"

    with pytest.raises(schema.SchemaInvalid):
        schema.create_table(name="New", slug="new", display_field="name")
