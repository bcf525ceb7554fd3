"""Each field type makes good values canonical, refuses bad ones with its message, converts
from other types and checks its own options."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from zstorage.fields import InvalidValue, kind_of, registered_types
from zstorage.models import FieldType

STATUS = {"choices": ["new", "open", "closed"]}


def coerce(field_type: str, value: Any, options: dict[str, Any] | None = None) -> Any:
    return kind_of(field_type).coerce(value, options or {})


def convert(field_type: str, value: Any, options: dict[str, Any] | None = None) -> Any:
    return kind_of(field_type).convert(value, options or {})


def refusal(call: Any, *args: Any) -> str:
    with pytest.raises(InvalidValue) as caught:
        call(*args)
    return str(caught.value)


def test_every_declared_type_is_registered_and_unknown_types_are_named():
    # The built-in types (FieldType) and phone, the one added as a class alone (phone.py).
    assert sorted(registered_types()) == sorted([*FieldType.values, "phone"])
    assert len(registered_types()) == 14
    assert refusal(kind_of, "colour") == "Unknown field type 'colour'."


# Good values become canonical ------------------------------------------------------------


@pytest.mark.parametrize(
    ("field_type", "value", "options", "canonical"),
    [
        ("text", "Ada Lovelace", {}, "Ada Lovelace"),
        ("text", "  kept as typed ", {}, "  kept as typed "),
        ("long_text", "line one\nline two", {}, "line one\nline two"),
        ("integer", 12, {}, 12),
        ("integer", " 12 ", {}, 12),
        ("integer", "-7", {}, -7),
        ("integer", 12.0, {}, 12),
        ("integer", "12.00", {}, 12),
        ("decimal", "12.5", {"places": 2}, "12.50"),
        ("decimal", 3, {"places": 2}, "3.00"),
        ("decimal", 0.1, {"places": 3}, "0.100"),
        ("decimal", Decimal("7.26"), {"places": 1}, "7.3"),
        ("decimal", "1e3", {}, "1000"),
        ("decimal", " 12.50 ", {}, "12.50"),
        ("boolean", True, {}, True),
        ("boolean", "yes", {}, True),
        ("boolean", "Off", {}, False),
        ("boolean", 0, {}, False),
        ("boolean", 1, {}, True),
        ("date", "2024-05-01", {}, "2024-05-01"),
        ("date", "2024-05-01T23:30:00Z", {}, "2024-05-01"),
        ("date", dt.date(2024, 5, 1), {}, "2024-05-01"),
        ("date", dt.datetime(2024, 5, 1, 23, 30, tzinfo=dt.UTC), {}, "2024-05-01"),
        ("datetime", "2024-05-01T13:30:00Z", {}, "2024-05-01T13:30:00.000000Z"),
        ("datetime", "2024-05-01T15:30:00+02:00", {}, "2024-05-01T13:30:00.000000Z"),
        ("datetime", "2024-05-01 13:30", {}, "2024-05-01T13:30:00.000000Z"),
        ("datetime", "2024-05-01T13:30:00.5Z", {}, "2024-05-01T13:30:00.500000Z"),
        ("datetime", "2024-05-01", {}, "2024-05-01T00:00:00.000000Z"),
        (
            "datetime",
            dt.datetime(2024, 5, 1, 8, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
            {},
            "2024-05-01T13:30:00.000000Z",
        ),
        ("datetime", dt.datetime(2024, 5, 1, 13, 30), {}, "2024-05-01T13:30:00.000000Z"),
        ("email", "Ada@Example.COM", {}, "Ada@example.com"),
        ("email", " bob@example.org ", {}, "bob@example.org"),
        ("url", "https://example.com/a?b=1", {}, "https://example.com/a?b=1"),
        ("choice", "open", STATUS, "open"),
        ("multi_choice", ["closed", "new"], STATUS, ["new", "closed"]),
        ("multi_choice", "closed, new", STATUS, ["new", "closed"]),
        ("multi_choice", ["open", "open"], STATUS, ["open"]),
        ("json", {"a": [1, 2]}, {}, {"a": [1, 2]}),
        ("json", "plain text", {}, "plain text"),
        ("json", 3.5, {}, 3.5),
        ("reference", 12, {"table": "people"}, 12),
        ("reference", "12", {"table": "people"}, 12),
        ("reference", " 12 ", {"table": "people"}, 12),
        ("reference", {"id": 12}, {"table": "people"}, 12),
        ("reference", {"id": "12", "name": "Ada"}, {"table": "people"}, 12),
    ],
)
def test_good_values_are_made_canonical(
    field_type: str, value: Any, options: dict[str, Any], canonical: Any
):
    assert coerce(field_type, value, options) == canonical


def test_canonical_datetimes_are_fixed_width_so_text_order_is_time_order():
    moments = [
        "2024-05-01T13:30:00.5Z",
        "2024-05-01T13:30:00Z",
        "2024-05-01T09:00:00-08:00",
        "0999-12-31T23:59:59Z",
        "2024-05-01T13:30:00.000001Z",
    ]
    canonical = [coerce("datetime", m) for m in moments]
    assert {len(c) for c in canonical} == {len("2024-05-01T13:30:00.000000Z")}
    assert canonical[3] == "0999-12-31T23:59:59.000000Z"
    by_time = sorted(canonical, key=lambda c: dt.datetime.fromisoformat(c))
    assert sorted(canonical) == by_time


# Bad values give the documented message ---------------------------------------------------


@pytest.mark.parametrize(
    ("field_type", "value", "options", "message"),
    [
        ("text", 12, {}, "Enter text."),
        ("text", "x" * 1001, {}, "Keep this under 1000 characters."),
        ("long_text", "x" * 100_001, {}, "Keep this under 100000 characters."),
        ("integer", "twelve", {}, "Enter a whole number."),
        ("integer", 12.5, {}, "Enter a whole number."),
        ("integer", "12.5", {}, "Enter a whole number."),
        ("integer", True, {}, "Enter a whole number."),
        ("integer", [1], {}, "Enter a whole number."),
        ("decimal", "12,5", {}, "Enter a number."),
        ("decimal", True, {}, "Enter a number."),
        ("decimal", [1], {}, "Enter a number."),
        ("decimal", "NaN", {}, "Enter a finite number."),
        ("decimal", "Infinity", {}, "Enter a finite number."),
        ("decimal", "1e30", {"places": 2}, "Enter a number with at most 28 digits."),
        ("boolean", "maybe", {}, "Enter true or false."),
        ("boolean", 2, {}, "Enter true or false."),
        ("boolean", 1.0, {}, "Enter true or false."),
        ("date", "2024-02-30", {}, "Enter a date as YYYY-MM-DD."),
        ("date", "tomorrow", {}, "Enter a date as YYYY-MM-DD."),
        ("date", 20240501, {}, "Enter a date (YYYY-MM-DD)."),
        (
            "datetime",
            "yesterday",
            {},
            "Enter a date and time as ISO 8601, e.g. 2024-05-01T13:30:00Z.",
        ),
        ("datetime", 1714570200, {}, "Enter a date and time (ISO 8601)."),
        ("email", "not-an-email", {}, "Enter a valid email address."),
        ("email", "ada@", {}, "Enter a valid email address."),
        ("email", ["ada@example.com"], {}, "Enter an email address."),
        ("url", "example.com", {}, "Enter a valid URL (http:// or https://)."),
        ("url", "javascript:alert(1)", {}, "Enter a valid URL (http:// or https://)."),
        ("url", 5, {}, "Enter a URL."),
        ("choice", "Open", STATUS, "Choose one of: new, open, closed."),
        ("choice", ["open"], STATUS, "Choose one of: new, open, closed."),
        (
            "multi_choice",
            ["open", "lost"],
            STATUS,
            "Not a choice: lost. Choose from: new, open, closed.",
        ),
        ("multi_choice", 5, STATUS, "Enter a list of choices."),
        ("multi_choice", [1], STATUS, "Enter a list of choices."),
        ("json", float("nan"), {}, "Enter a JSON value."),
        ("json", {"when": dt.date(2024, 5, 1)}, {}, "Enter a JSON value."),
        ("reference", 0, {"table": "people"}, "Enter the id of a record."),
        ("reference", -3, {"table": "people"}, "Enter the id of a record."),
        ("reference", "abc", {"table": "people"}, "Enter the id of a record."),
        ("reference", True, {"table": "people"}, "Enter the id of a record."),
        ("reference", 1.5, {"table": "people"}, "Enter the id of a record."),
        ("reference", {"name": "Ada"}, {"table": "people"}, "Enter the id of a record."),
        ("reference", "²", {"table": "people"}, "Enter the id of a record."),
    ],
)
def test_bad_values_give_the_documented_message(
    field_type: str, value: Any, options: dict[str, Any], message: str
):
    assert refusal(coerce, field_type, value, options) == message


# Conversion from other types (a field's type change) --------------------------------------


@pytest.mark.parametrize(
    ("field_type", "stored", "options", "converted"),
    [
        ("text", 12, {}, "12"),
        ("text", "12.50", {}, "12.50"),
        ("text", True, {}, "true"),
        ("text", {"a": 1}, {}, '{"a": 1}'),
        ("long_text", "2024-05-01", {}, "2024-05-01"),
        ("integer", "12", {}, 12),
        ("integer", "12.00", {}, 12),
        ("decimal", 12, {"places": 2}, "12.00"),
        ("decimal", "3.5", {"places": 2}, "3.50"),
        ("boolean", "yes", {}, True),
        ("boolean", 0, {}, False),
        ("date", "2024-05-01T13:30:00.000000Z", {}, "2024-05-01"),
        ("datetime", "2024-05-01", {}, "2024-05-01T00:00:00.000000Z"),
        ("email", "Ada@Example.com", {}, "Ada@example.com"),
        ("url", "https://example.com", {}, "https://example.com"),
        ("choice", "open", STATUS, "open"),
        ("multi_choice", "open", STATUS, ["open"]),
        ("multi_choice", "closed, new", STATUS, ["new", "closed"]),
        ("multi_choice", ["closed", "new"], STATUS, ["new", "closed"]),
        ("json", '{"a": 1}', {}, {"a": 1}),
        ("json", "hello", {}, "hello"),
        ("json", 12, {}, 12),
        ("reference", 12, {"table": "people"}, 12),
        ("reference", "12", {"table": "people"}, 12),
    ],
)
def test_convert_from_other_types(
    field_type: str, stored: Any, options: dict[str, Any], converted: Any
):
    assert convert(field_type, stored, options) == converted


@pytest.mark.parametrize(
    ("field_type", "stored", "options", "message"),
    [
        ("integer", "abc", {}, "Enter a whole number."),
        ("integer", "12.50", {}, "Enter a whole number."),
        ("integer", True, {}, "Enter a whole number."),
        ("decimal", False, {}, "Enter a number."),
        ("boolean", 2, {}, "Enter true or false."),
        ("date", "soon", {}, "Enter a date as YYYY-MM-DD."),
        ("choice", "lost", STATUS, "Choose one of: new, open, closed."),
        (
            "multi_choice",
            "open, lost",
            STATUS,
            "Not a choice: lost. Choose from: new, open, closed.",
        ),
        ("reference", "Ada", {"table": "people"}, "Enter the id of a record."),
    ],
)
def test_convert_refuses_what_does_not_fit(
    field_type: str, stored: Any, options: dict[str, Any], message: str
):
    assert refusal(convert, field_type, stored, options) == message


@pytest.mark.parametrize(
    ("field_type", "value", "shown"),
    [
        ("text", None, ""),
        ("integer", 12, "12"),
        ("boolean", True, "Yes"),
        ("boolean", False, "No"),
        ("multi_choice", ["new", "closed"], "new, closed"),
        ("json", {"name": "Zoë"}, '{"name": "Zoë"}'),
        ("json", None, ""),
    ],
)
def test_display(field_type: str, value: Any, shown: str):
    assert kind_of(field_type).display(value) == shown


# Options ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field_type", "options", "message"),
    [
        ("choice", {}, "List the choices as a non-empty list of texts."),
        ("choice", {"choices": []}, "List the choices as a non-empty list of texts."),
        ("choice", {"choices": "new,open"}, "List the choices as a non-empty list of texts."),
        ("multi_choice", {"choices": [1, 2]}, "List the choices as a non-empty list of texts."),
        ("multi_choice", {"choices": ["a", "a"]}, "Each choice may appear once."),
        ("decimal", {"places": 13}, "Decimal places must be a whole number from 0 to 12."),
        ("decimal", {"places": -1}, "Decimal places must be a whole number from 0 to 12."),
        ("decimal", {"places": "2"}, "Decimal places must be a whole number from 0 to 12."),
        ("decimal", {"places": True}, "Decimal places must be a whole number from 0 to 12."),
        ("reference", {}, "Name the referenced table's slug in options.table."),
        ("reference", {"table": ""}, "Name the referenced table's slug in options.table."),
        ("reference", {"table": 3}, "Name the referenced table's slug in options.table."),
    ],
)
def test_bad_options_are_refused(field_type: str, options: dict[str, Any], message: str):
    assert refusal(kind_of(field_type).check_options, options) == message


@pytest.mark.parametrize(
    ("field_type", "options"),
    [
        ("choice", STATUS),
        ("multi_choice", STATUS),
        ("decimal", {}),
        ("decimal", {"places": 0}),
        ("decimal", {"places": 12}),
        ("reference", {"table": "people"}),
        ("text", {}),
    ],
)
def test_good_options_pass(field_type: str, options: dict[str, Any]):
    kind_of(field_type).check_options(options)


def test_choice_types_check_their_options_when_coercing_too():
    assert refusal(coerce, "choice", "open", {}) == (
        "List the choices as a non-empty list of texts."
    )
