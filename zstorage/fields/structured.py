"""Structured field types: JSON (any JSON value) and reference (the id of a record of another
table, named by its slug in ``options["table"]``).

A reference's target is checked where the database can see it: ``check_schema`` when the field
is saved (the table exists), ``missing`` when values are written or converted (the records
exist). Tables are referenced by slug, so ``fields_referencing`` finds who points at one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet

from zstorage.fields.base import COMPARE, Domain, FieldKind, FilterSpec, InvalidValue, register
from zstorage.models import Field, FieldType, Record, Table


@register
class JsonKind(FieldKind):
    type = FieldType.JSON
    label = FieldType.JSON.label
    order = 120
    domain = Domain.JSON
    operators = frozenset({"$eq", "$ne"})
    widget = "json"
    filter = None  # JSON values have no filter input; the API's query language reaches them
    shown_as = "pre"

    def coerce(self, value: Any, options: dict[str, Any]) -> Any:
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise InvalidValue("Enter a JSON value.") from None
        return value

    def convert(self, value: Any, options: dict[str, Any]) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def display(self, value: Any) -> str:
        return "" if value is None else json.dumps(value, ensure_ascii=False)

    def input_value(self, value: Any) -> Any:
        return "" if value is None else json.dumps(value, indent=2, ensure_ascii=False)

    def from_input(self, value: Any) -> Any:
        # Text that is not JSON would otherwise be stored as a string.
        text = str(value or "")
        if text.strip() == "":
            return None
        try:
            return json.loads(text)
        except ValueError:
            raise InvalidValue(
                'Enter valid JSON, e.g. {"a": 1}, [1, 2] or "text" in quotes.'
            ) from None

    def default_text(self, value: Any) -> str:
        return json.dumps(value)

    def parse_default(self, text: str) -> Any:
        try:
            return json.loads(text)
        except ValueError:
            raise InvalidValue("Enter the default as JSON.") from None

    def csv_format(self, value: Any) -> str:
        return "" if value is None else json.dumps(value, ensure_ascii=False)

    def csv_parse(self, text: str) -> Any:
        try:
            return json.loads(text)
        except ValueError:
            raise InvalidValue("Enter valid JSON.") from None


@register
class ReferenceKind(FieldKind):
    """The id of a record of the table named in ``options["table"]`` (a slug)."""

    type = FieldType.REFERENCE
    label = FieldType.REFERENCE.label
    order = 130
    domain = Domain.INTEGER
    operators = COMPARE
    numeric = True
    widget = "reference"
    shown_as = "record"
    filter = FilterSpec("reference", "number")
    option_inputs = ("target",)

    def coerce(self, value: Any, options: dict[str, Any]) -> int:
        if isinstance(value, dict) and "id" in value:
            value = value["id"]
        if isinstance(value, bool):
            raise InvalidValue("Enter the id of a record.")
        if isinstance(value, str) and value.strip().isdecimal() and len(value.strip()) <= 19:
            value = int(value)
        if isinstance(value, int) and 0 < value < 2**63:
            return value
        raise InvalidValue("Enter the id of a record.")

    def check_options(self, options: dict[str, Any]) -> None:
        if not isinstance(options.get("table"), str) or not options["table"]:
            raise InvalidValue("Name the referenced table's slug in options.table.")

    def check_schema(self, options: dict[str, Any]) -> None:
        if not Table.objects.filter(slug=options["table"]).exists():
            raise InvalidValue(f"No table {options['table']!r} to reference.")

    def missing(self, options: Mapping[str, Any], values: Iterable[Any]) -> dict[Any, str]:
        """The message leaves the referenced table unnamed: whoever writes the record may not
        be granted that table."""
        target = options["table"]
        wanted = set(values)
        found = set(
            Record.objects.filter(table__slug=target, pk__in=wanted).values_list("pk", flat=True)
        )
        return {v: f"No record {v} in the referenced table." for v in wanted if v not in found}

    def from_aggregate(self, value: Any) -> Any:
        if isinstance(value, Decimal) and value == value.to_integral():
            return int(value)
        return super().from_aggregate(value)

    def linked_table(self, options: Mapping[str, Any]) -> str | None:
        return str(options.get("table") or "") or None

    def filter_bound(self, text: str) -> Any:
        text = text.lstrip("#")
        return int(text) if text.isdecimal() else text


def fields_referencing(slug: str) -> QuerySet[Field]:
    """Reference fields (in any table) whose values are records of the table ``slug``."""
    return Field.objects.filter(type=ReferenceKind.type, options__table=slug)
