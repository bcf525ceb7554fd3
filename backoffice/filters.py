"""The record list's filters: inputs built from the field types, compiled into the query
language, so the list, its CSV export and the API mean the same thing by a filter.

Each field type says which filter input it takes (``FieldKind.filter``: text, range, choice,
boolean or reference, with its HTML input type and operator) and how a typed bound reads
(``filter_bound``); this module draws and reads them. Each input is one URL parameter
(``f_<key>`` or ``f_<key>__from`` / ``__to``): the URL is the state, which htmx pushes to the
address bar and the export link reuses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from zstorage.errors import QueryError
from zstorage.fields import FilterSpec, kind_of
from zstorage.models import Field
from zstorage.query import compile_query

PREFIX = "f_"


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


#: Finds the ids of the records a reference field may point at by their label (a reference
#: filter typed as a name); ValueError says what to type instead.
Named = Callable[[Field, str], list[int]]


def _condition(
    fld: Field, spec: FilterSpec, values: Mapping[str, str], named: Named | None = None
) -> dict[str, Any] | None:
    key, kind = fld.key, kind_of(fld.type)
    if spec.kind == "range":
        bounds = {}
        if values["from"]:
            bounds["$gte"] = kind.filter_bound(values["from"])
        if values["to"]:
            bounds["$lte"] = kind.filter_bound(values["to"])
        return {key: bounds} if bounds else None
    if spec.kind == "boolean":
        if values["value"] not in ("yes", "no"):
            return None
        # "No" includes records without a value: they are not true.
        return {key: {"$eq": True}} if values["value"] == "yes" else {key: {"$ne": True}}
    if not values["value"]:
        return None
    if spec.kind == "reference":
        bound = kind.filter_bound(values["value"])
        if isinstance(bound, str) and named is not None:
            return {key: {"$in": named(fld, bound)}}  # a name: the records it stands for
        return {key: bound}
    return {key: {spec.operator: kind.filter_bound(values["value"])}}


@dataclass
class Filters:
    inputs: list[FilterInput]
    query: dict[str, Any]

    @property
    def active(self) -> int:
        return sum(1 for item in self.inputs if item.active)


def build_filters(
    fields: Mapping[str, Field], params: Mapping[str, str], named: Named | None = None
) -> Filters:
    """The filter inputs with what was typed, and the query of those that compile. A filter
    that does not compile is left out of the query and shows its error instead. With
    ``named``, a reference filter may be typed as (part of) a record's name."""
    inputs: list[FilterInput] = []
    parts: list[dict[str, Any]] = []
    for key, fld in fields.items():
        spec = kind_of(fld.type).filter
        if spec is None:
            continue  # e.g. JSON values: the API's query language reaches them
        name = PREFIX + key
        if spec.kind == "range":
            values = {
                "from": params.get(f"{name}__from", "").strip(),
                "to": params.get(f"{name}__to", "").strip(),
            }
        else:
            values = {"value": params.get(name, "").strip()}
        choices = list(fld.options.get("choices", []))
        item = FilterInput(fld, spec.kind, values, spec.input_type, choices)
        try:
            condition = _condition(fld, spec, values, named)
        except ValueError as exc:
            item.errors.append(str(exc))
            condition = None
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
