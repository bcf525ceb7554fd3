"""Validation rules: each kind with its own message, every error at once keyed by field,
unknown keys refused, defaults on create only, and rule definitions checked when saved."""

from __future__ import annotations

from typing import Any

import pytest

from tests.zstorage.builders import make_field, make_rule, make_table
from zstorage import records
from zstorage.errors import RecordInvalid
from zstorage.models import Table
from zstorage.schema import SchemaInvalid
from zstorage.validation import ALL, REQUIRED_MESSAGE, TableSchema, clean_data

pytestmark = pytest.mark.django_db


def validate(
    table: Table, data: dict[str, Any], *, creating: bool = True
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    return clean_data(TableSchema.load(table), data, creating=creating)


def errors_of(table: Table, data: dict[str, Any], *, creating: bool = True) -> dict[str, list[str]]:
    return validate(table, data, creating=creating)[1]


def create_errors(table: Table, data: dict[str, Any]) -> dict[str, list[str]]:
    with pytest.raises(RecordInvalid) as caught:
        records.create_record(table, data)
    return caught.value.errors


# Required ---------------------------------------------------------------------------------


@pytest.mark.parametrize("blank", [None, "", []])
def test_a_required_field_refuses_absent_and_blank_values(blank: Any):
    table = make_table()
    make_field(table, "name", required=True)
    assert errors_of(table, {}) == {"name": [REQUIRED_MESSAGE]}
    assert errors_of(table, {"name": blank}) == {"name": [REQUIRED_MESSAGE]}
    assert errors_of(table, {"name": "Ada"}) == {}


def test_a_required_rule_gives_its_own_message():
    table = make_table()
    name = make_field(table, "name")
    make_rule(table, "required", "Tell us your name.", on=name)
    assert errors_of(table, {"name": ""}) == {"name": ["Tell us your name."]}
    assert errors_of(table, {"name": "Ada"}) == {}


def test_blank_optional_values_are_dropped_not_stored():
    table = make_table()
    make_field(table, "name")
    make_field(table, "tags", "multi_choice", options={"choices": ["a", "b"]})
    assert validate(table, {"name": "", "tags": []}) == ({}, {})
    assert validate(table, {"tags": " , "}) == ({}, {})


def test_a_multiple_choice_that_chooses_nothing_does_not_pass_as_required():
    table = make_table()
    make_field(table, "tags", "multi_choice", options={"choices": ["a", "b"]}, required=True)
    assert errors_of(table, {"tags": ","}) == {"tags": [REQUIRED_MESSAGE]}
    assert validate(table, {"tags": "b, a"}) == ({"tags": ["a", "b"]}, {})


# Unique and unique together (checked by the write path, which can see other records) -------


def test_unique_refuses_a_taken_value_with_the_rule_message():
    table = make_table()
    email = make_field(table, "email", "email")
    make_rule(table, "unique", "This email is already registered.", on=email)
    first = records.create_record(table, {"email": "ada@example.com"})

    assert create_errors(table, {"email": "ada@EXAMPLE.com"}) == {
        "email": ["This email is already registered."]
    }
    # A record keeps its own value on update; absent values never collide.
    records.update_record(table, first.pk, {"email": "ada@example.com"})
    records.create_record(table, {})
    records.create_record(table, {})


def test_unique_together_refuses_the_same_pair_on_its_first_field():
    table = make_table()
    make_field(table, "first")
    make_field(table, "last")
    make_rule(table, "unique_together", "This person already exists.", fields=["first", "last"])
    records.create_record(table, {"first": "Ada", "last": "Lovelace"})
    records.create_record(table, {"first": "Ada", "last": "Byron"})
    records.create_record(table, {"first": "Ada"})
    records.create_record(table, {"first": "Ada"})

    assert create_errors(table, {"first": "Ada", "last": "Lovelace"}) == {
        "first": ["This person already exists."]
    }


# Min and max ------------------------------------------------------------------------------


def test_min_and_max_on_integers_compare_numbers_not_text():
    table = make_table()
    age = make_field(table, "age", "integer")
    make_rule(table, "min", "Must be an adult.", on=age, value=18)
    make_rule(table, "max", "Nobody is that old.", on=age, value=100)

    assert errors_of(table, {"age": 17}) == {"age": ["Must be an adult."]}
    assert errors_of(table, {"age": "101"}) == {"age": ["Nobody is that old."]}
    for good in (18, 99, 100):
        assert errors_of(table, {"age": good}) == {}


def test_min_and_max_on_decimals():
    table = make_table()
    price = make_field(table, "price", "decimal", options={"places": 2})
    make_rule(table, "min", "Prices start at 9.50.", on=price, value="9.5")
    make_rule(table, "max", "Too expensive.", on=price, value=1000)

    assert errors_of(table, {"price": "9.49"}) == {"price": ["Prices start at 9.50."]}
    assert errors_of(table, {"price": "10"}) == {}
    assert errors_of(table, {"price": "1000.00"}) == {}
    assert errors_of(table, {"price": "1000.01"}) == {"price": ["Too expensive."]}


def test_min_and_max_on_dates():
    table = make_table()
    day = make_field(table, "day", "date")
    make_rule(table, "min", "Not before 2024.", on=day, value="2024-01-01")
    make_rule(table, "max", "Not after 2024.", on=day, value="2024-12-31")

    assert errors_of(table, {"day": "2023-12-31"}) == {"day": ["Not before 2024."]}
    assert errors_of(table, {"day": "2025-01-01"}) == {"day": ["Not after 2024."]}
    assert errors_of(table, {"day": "2024-01-01"}) == {}
    assert errors_of(table, {"day": "2024-12-31"}) == {}


def test_min_on_datetimes_compares_instants_across_time_zones():
    table = make_table()
    at = make_field(table, "at", "datetime")
    make_rule(table, "min", "Not before the launch.", on=at, value="2024-01-01T00:00:00Z")

    # 23:00 at UTC-2 on New Year's Eve is 01:00 UTC on the first: after the launch.
    assert errors_of(table, {"at": "2023-12-31T23:00:00-02:00"}) == {}
    assert errors_of(table, {"at": "2024-01-01T00:30:00+01:00"}) == {
        "at": ["Not before the launch."]
    }


# Length -----------------------------------------------------------------------------------


def test_min_and_max_length_on_text():
    table = make_table()
    code = make_field(table, "code")
    make_rule(table, "min_length", "At least 3 characters.", on=code, value=3)
    make_rule(table, "max_length", "At most 5 characters.", on=code, value=5)

    assert errors_of(table, {"code": "ab"}) == {"code": ["At least 3 characters."]}
    assert errors_of(table, {"code": "abcdef"}) == {"code": ["At most 5 characters."]}
    assert errors_of(table, {"code": "abc"}) == {}
    assert errors_of(table, {"code": "abcde"}) == {}


def test_min_and_max_length_on_multi_choice_count_the_choices():
    table = make_table()
    tags = make_field(table, "tags", "multi_choice", options={"choices": ["red", "green", "blue"]})
    make_rule(table, "min_length", "Pick two or more.", on=tags, value=2)
    make_rule(table, "max_length", "Pick two at most.", on=tags, value=2)

    assert errors_of(table, {"tags": ["red"]}) == {"tags": ["Pick two or more."]}
    assert errors_of(table, {"tags": ["red", "green", "blue"]}) == {"tags": ["Pick two at most."]}
    # Duplicates collapse before the count.
    assert errors_of(table, {"tags": ["red", "red"]}) == {"tags": ["Pick two or more."]}
    assert errors_of(table, {"tags": ["blue", "red"]}) == {}


# Pattern and choices ----------------------------------------------------------------------


def test_regex():
    table = make_table()
    sku = make_field(table, "sku")
    make_rule(table, "regex", "Use the form ABC-123.", on=sku, pattern=r"^[A-Z]{3}-\d{3}$")

    assert errors_of(table, {"sku": "abc-123"}) == {"sku": ["Use the form ABC-123."]}
    assert errors_of(table, {"sku": "ABC-1234"}) == {"sku": ["Use the form ABC-123."]}
    assert errors_of(table, {"sku": "ABC-123"}) == {}


def test_choices_rule_on_text_and_on_multi_choice():
    table = make_table()
    colour = make_field(table, "colour")
    tags = make_field(table, "tags", "multi_choice", options={"choices": ["a", "b", "c"]})
    make_rule(table, "choices", "Red or green only.", on=colour, values=["red", "green"])
    make_rule(table, "choices", "Tag c is retired.", on=tags, values=["a", "b"])

    assert errors_of(table, {"colour": "blue", "tags": ["a", "c"]}) == {
        "colour": ["Red or green only."],
        "tags": ["Tag c is retired."],
    }
    assert errors_of(table, {"colour": "red", "tags": ["b", "a"]}) == {}


# Cross-field expressions ------------------------------------------------------------------


def test_an_expression_reports_on_the_field_it_names():
    table = make_table()
    make_field(table, "start", "date")
    make_field(table, "end", "date")
    make_rule(
        table, "expression", "The end comes after the start.", expression="end >= start",
        field="end",
    )  # fmt: skip

    assert errors_of(table, {"start": "2024-05-02", "end": "2024-05-01"}) == {
        "end": ["The end comes after the start."]
    }
    assert errors_of(table, {"start": "2024-05-01", "end": "2024-05-01"}) == {}
    # An absent operand means the rule does not apply.
    assert errors_of(table, {"end": "2024-05-01"}) == {}


def test_an_expression_without_a_field_reports_on_all():
    table = make_table()
    make_field(table, "total", "decimal", options={"places": 2})
    make_field(table, "discount", "decimal", options={"places": 2})
    make_field(table, "status", "choice", options={"choices": ["draft", "sent"]})
    make_rule(
        table,
        "expression",
        "The discount is at most half the total, and a sent invoice has a total.",
        expression='discount <= total * 0.5 and (status != "sent" or total > 0)',
    )

    message = "The discount is at most half the total, and a sent invoice has a total."
    assert errors_of(table, {"total": "100", "discount": "50.01"}) == {ALL: [message]}
    assert errors_of(table, {"total": "0", "discount": "0", "status": "sent"}) == {ALL: [message]}
    assert errors_of(table, {"total": "100", "discount": "50", "status": "sent"}) == {}
    assert errors_of(table, {"total": "0", "discount": "0", "status": "draft"}) == {}


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os').system('true')", "Call is not allowed in a rule expression."),
        ("len(name) > 3", "Call is not allowed in a rule expression."),
        ("name.real > 1", "Attribute is not allowed in a rule expression."),
        ("name[0] == 'A'", "Subscript is not allowed in a rule expression."),
        ("[n for n in name]", "ListComp is not allowed in a rule expression."),
        ("(lambda: 1)", "Lambda is not allowed in a rule expression."),
        ("age ** 99999 > 1", "Pow is not allowed in a rule expression."),
        ("age > limit", "Unknown field 'limit' in the expression."),
        ("age >", "Not a valid expression: invalid syntax."),
    ],
)
def test_unsafe_or_unknown_expressions_are_refused_when_the_rule_is_made(
    expression: str, message: str
):
    table = make_table()
    make_field(table, "name")
    make_field(table, "age", "integer")
    with pytest.raises(SchemaInvalid) as caught:
        make_rule(table, "expression", "Nope.", expression=expression)
    assert caught.value.errors == {"params": [message]}
    assert not table.rules.exists()


def test_an_expression_must_show_its_error_on_a_known_field():
    table = make_table()
    make_field(table, "age", "integer")
    with pytest.raises(SchemaInvalid) as caught:
        make_rule(table, "expression", "Nope.", expression="age > 1", field="years")
    assert caught.value.errors == {"params": ["Unknown field 'years' to show the error on."]}


# All errors at once -----------------------------------------------------------------------


def test_every_error_is_returned_at_once_keyed_by_field():
    table = make_table()
    make_field(table, "name", required=True)
    email = make_field(table, "email", "email")
    age = make_field(table, "age", "integer")
    code = make_field(table, "code")
    make_field(table, "low", "integer")
    make_field(table, "high", "integer")
    make_rule(table, "min", "Must be an adult.", on=age, value=18)
    make_rule(table, "regex", "Use capitals.", on=code, pattern="^[A-Z]+$")
    make_rule(table, "min_length", "At least 3 letters.", on=code, value=3)
    make_rule(table, "unique", "Email taken.", on=email)
    make_rule(table, "expression", "Low is below high.", expression="low < high")
    records.create_record(table, {"name": "Ada", "email": "ada@example.com"})

    errors = create_errors(
        table,
        {
            "email": "ada@example.com",
            "age": 12,
            "code": "ab",
            "low": 5,
            "high": 1,
            "colour": "red",
        },
    )
    assert errors == {
        "name": [REQUIRED_MESSAGE],
        "email": ["Email taken."],
        "age": ["Must be an adult."],
        "code": ["Use capitals.", "At least 3 letters."],
        ALL: ["Low is below high."],
        "colour": ["Unknown field 'colour'."],
    }


def test_type_errors_and_rule_errors_are_reported_together():
    table = make_table()
    make_field(table, "age", "integer")
    make_field(table, "email", "email")
    assert errors_of(table, {"age": "old", "email": "nope"}) == {
        "age": ["Enter a whole number."],
        "email": ["Enter a valid email address."],
    }


def test_unknown_keys_are_refused():
    table = make_table()
    make_field(table, "name")
    assert errors_of(table, {"name": "Ada", "Name": "Ada", "id": 3}) == {
        "Name": ["Unknown field 'Name'."],
        "id": ["Unknown field 'id'."],
    }


# Defaults ---------------------------------------------------------------------------------


def test_defaults_apply_on_create_only():
    table = make_table()
    make_field(table, "name")
    make_field(
        table, "status", "choice", options={"choices": ["new", "done"]}, default="new",
        required=True,
    )  # fmt: skip

    assert validate(table, {"name": "Ada"}) == ({"name": "Ada", "status": "new"}, {})
    assert validate(table, {"name": "Ada", "status": "done"})[0]["status"] == "done"
    assert validate(table, {"name": "Ada"}, creating=False) == (
        {"name": "Ada"},
        {"status": [REQUIRED_MESSAGE]},
    )


def test_an_optional_default_is_not_put_back_by_an_update():
    table = make_table()
    make_field(table, "priority", "integer", default=3)

    record = records.create_record(table, {})
    assert record.data == {"priority": 3}
    updated = records.update_record(table, record.pk, {"priority": None})
    assert updated.data == {}


# Rule definitions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "field_key", "params", "errors"),
    [
        ("min", "age", {}, {"params": ["Give the limit as params.value."]}),
        (
            "min",
            "age",
            {"value": "old"},
            {"params": ["The limit does not suit the field: Enter a whole number."]},
        ),
        (
            "min_length",
            "name",
            {"value": "3"},
            {"params": ["Give the length as a whole number in params.value."]},
        ),
        (
            "max_length",
            "name",
            {"value": -1},
            {"params": ["Give the length as a whole number in params.value."]},
        ),
        ("regex", "name", {"pattern": "("}, None),
        ("regex", "name", {}, {"params": ["Give the pattern as params.pattern."]}),
        (
            "choices",
            "name",
            {"values": []},
            {"params": ["List the allowed values in params.values."]},
        ),
        ("required", None, {}, {"field": ["A required rule applies to a field: name it."]}),
        (
            "unique_together",
            "name",
            {"fields": ["name", "age"]},
            {"field": ["A unique_together rule applies to the table, not to a field."]},
        ),
        (
            "unique_together",
            None,
            {"fields": ["name"]},
            {"params": ["List two or more of the table's field keys in params.fields."]},
        ),
        (
            "unique_together",
            None,
            {"fields": ["name", "colour"]},
            {"params": ["List two or more of the table's field keys in params.fields."]},
        ),
        ("colour", "name", {}, {"kind": ["Value 'colour' is not a valid choice."]}),
    ],
)
def test_rule_definitions_are_checked(
    kind: str, field_key: str | None, params: dict[str, Any], errors: dict[str, list[str]] | None
):
    table = make_table()
    fields = {"name": make_field(table, "name"), "age": make_field(table, "age", "integer")}
    with pytest.raises(SchemaInvalid) as caught:
        make_rule(table, kind, "Nope.", on=fields[field_key] if field_key else None, **params)
    if errors is None:
        assert caught.value.errors["params"][0].startswith("Not a valid pattern:")
    else:
        assert caught.value.errors == errors
    assert not table.rules.exists()


@pytest.mark.parametrize("field_type", ["integer", "decimal", "boolean", "date", "json"])
def test_length_rules_need_a_field_whose_values_have_a_length(field_type: str):
    table = make_table()
    fld = make_field(table, "value", field_type)
    with pytest.raises(SchemaInvalid) as caught:
        make_rule(table, "max_length", "Too long.", on=fld, value=3)
    assert caught.value.errors == {
        "params": [f"A length rule does not apply to a {field_type} field."]
    }


def test_a_rule_without_a_message_is_refused():
    table = make_table()
    name = make_field(table, "name")
    with pytest.raises(SchemaInvalid) as caught:
        make_rule(table, "required", "", on=name)
    assert set(caught.value.errors) == {"message"}
