"""The record list's filters: inputs built from the field types, compiled into the query
language, so the list, its CSV export and the API mean the same thing by a filter.

Each input is one URL parameter (``f_<key>`` or ``f_<key>__from`` / ``__to``): the URL is the
state, which htmx pushes to the address bar and the export link reuses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backoffice.values import local_moment
from zstorage.errors import QueryError
from zstorage.models import Field, FieldType
from zstorage.query import compile_query

PREFIX = "f_"
TEXT_TYPES = {FieldType.TEXT, FieldType.LONG_TEXT, FieldType.EMAIL, FieldType.URL}
RANGE_INPUTS = {
    FieldType.INTEGER: "number",
    FieldType.DECIMAL: "number",
    FieldType.DATE: "date",
    FieldType.DATETIME: "datetime-local",
}


@dataclass
class FilterInput:
    """One field's filter control: ``kind`` is text, range, choice, boolean or reference."""

    field: Field
    kind: str
    values: dict[str, str]
    input_type: str = "text"
    choices: list[str] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)

    @property
    def name(self) -> str:
        return PREFIX + self.field.key

    @property
    def active(self) -> bool:
        return any(self.values.values())


def _kind(fld: Field) -> tuple[str, str] | None:
    if fld.type in TEXT_TYPES:
        return "text", "search"
    if fld.type in RANGE_INPUTS:
        return "range", RANGE_INPUTS[FieldType(fld.type)]
    if fld.type in (FieldType.CHOICE, FieldType.MULTI_CHOICE):
        return "choice", "select"
    if fld.type == FieldType.BOOLEAN:
        return "boolean", "select"
    if fld.type == FieldType.REFERENCE:
        return "reference", "number"
    return None  # JSON values have no filter input; the API's query language reaches them


def _bound(fld: Field, text: str) -> Any:
    """A range bound as the query language takes it for the field's type."""
    if fld.type == FieldType.INTEGER:
        try:
            return int(text)
        except ValueError:
            return text  # the query compiler says what is wrong
    if fld.type == FieldType.DATETIME:
        moment = local_moment(text)
        return moment.isoformat() if moment else text
    return text


def _condition(fld: Field, kind: str, values: Mapping[str, str]) -> dict[str, Any] | None:
    key = fld.key
    if kind == "text" and values["value"]:
        return {key: {"$icontains": values["value"]}}
    if kind == "range":
        bounds = {}
        if values["from"]:
            bounds["$gte"] = _bound(fld, values["from"])
        if values["to"]:
            bounds["$lte"] = _bound(fld, values["to"])
        return {key: bounds} if bounds else None
    if kind == "choice" and values["value"]:
        op = "$contains" if fld.type == FieldType.MULTI_CHOICE else "$eq"
        return {key: {op: values["value"]}}
    if kind == "boolean" and values["value"] in ("yes", "no"):
        # "No" includes records without a value: they are not true.
        return {key: {"$eq": True}} if values["value"] == "yes" else {key: {"$ne": True}}
    if kind == "reference" and values["value"]:
        text = values["value"].lstrip("#")
        return {key: int(text) if text.isdecimal() else text}
    return None


@dataclass
class Filters:
    inputs: list[FilterInput]
    query: dict[str, Any]

    @property
    def active(self) -> int:
        return sum(1 for item in self.inputs if item.active)


def build_filters(fields: Mapping[str, Field], params: Mapping[str, str]) -> Filters:
    """The filter inputs with what was typed, and the query of those that compile. A filter
    that does not compile is left out of the query and shows its error instead."""
    inputs: list[FilterInput] = []
    parts: list[dict[str, Any]] = []
    for key, fld in fields.items():
        found = _kind(fld)
        if found is None:
            continue
        kind, input_type = found
        name = PREFIX + key
        if kind == "range":
            values = {
                "from": params.get(f"{name}__from", "").strip(),
                "to": params.get(f"{name}__to", "").strip(),
            }
        else:
            values = {"value": params.get(name, "").strip()}
        item = FilterInput(fld, kind, values, input_type, list(fld.options.get("choices", [])))
        condition = _condition(fld, kind, values)
        if condition is not None:
            try:
                compile_query(condition, [fld])
            except QueryError as exc:
                item.errors.append(_friendly(exc))
            else:
                parts.append(condition)
        inputs.append(item)
    query: dict[str, Any] = {}
    if len(parts) == 1:
        query = parts[0]
    elif parts:
        query = {"$and": parts}
    return Filters(inputs, query)


def _friendly(exc: QueryError) -> str:
    detail = exc.detail
    return detail[:1].upper() + detail[1:]
