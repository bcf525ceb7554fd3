"""Record forms generated from a table's fields.

A form here only translates: stored values to what each input shows, and submitted inputs
back to values ``zstorage.records`` accepts. Validation is the records service's
(``RecordInvalid`` with errors keyed by field), the same the API runs, so a page never
accepts what the API would refuse or the other way round. The one error found here is text
that is not JSON in a JSON field, which the service would otherwise store as a string.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.http import QueryDict
from django.urls import reverse

from backoffice.values import input_text, local_moment, record_label
from zstorage import reads
from zstorage.models import Field, FieldType, Record, RuleKind, Table
from zstorage.permissions import Action, can

PREFIX = "f_"
#: How many records a reference select lists before the person searches.
REFERENCE_OPTIONS = 50

WIDGETS = {
    FieldType.TEXT: "text",
    FieldType.LONG_TEXT: "textarea",
    FieldType.INTEGER: "number",
    FieldType.DECIMAL: "number",
    FieldType.BOOLEAN: "checkbox",
    FieldType.DATE: "date",
    FieldType.DATETIME: "datetime-local",
    FieldType.EMAIL: "email",
    FieldType.URL: "url",
    FieldType.CHOICE: "select",
    FieldType.MULTI_CHOICE: "checkboxes",
    FieldType.JSON: "json",
    FieldType.REFERENCE: "reference",
}


def input_name(key: str) -> str:
    return PREFIX + key


@dataclass
class RecordInput:
    """Everything a template needs to draw one field's input, its label, help and errors."""

    field: Field
    widget: str
    value: Any = ""
    errors: list[str] = dataclasses.field(default_factory=list)
    required: bool = False
    choices: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    step: str | None = None
    lookup_url: str | None = None

    @property
    def name(self) -> str:
        return input_name(self.field.key)

    @property
    def id(self) -> str:
        return f"id_{self.name}"


def stored_values(fields: Mapping[str, Field], data: Mapping[str, Any]) -> dict[str, Any]:
    """What each input shows for a stored record (or a new one: the fields' defaults)."""
    values: dict[str, Any] = {}
    for key, fld in fields.items():
        value = data.get(key)
        if fld.type == FieldType.BOOLEAN:
            values[key] = bool(value)
        elif fld.type == FieldType.MULTI_CHOICE:
            values[key] = list(value or [])
        else:
            values[key] = input_text(fld, value)
    return values


def default_values(fields: Mapping[str, Field]) -> dict[str, Any]:
    return stored_values(fields, {k: f.default for k, f in fields.items() if f.default is not None})


def submitted_values(fields: Mapping[str, Field], post: QueryDict) -> dict[str, Any]:
    """What the person sent, as the inputs show it again when the form has errors."""
    values: dict[str, Any] = {}
    for key, fld in fields.items():
        name = input_name(key)
        if fld.type == FieldType.BOOLEAN:
            values[key] = name in post
        elif fld.type == FieldType.MULTI_CHOICE:
            values[key] = post.getlist(name)
        else:
            values[key] = post.get(name, "")
    return values


def to_data(
    fields: Mapping[str, Field], values: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Submitted values → the data the records service takes, and the errors found on the way.

    Every field is present, a blank one as None, so an update clears what was emptied."""
    data: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for key, fld in fields.items():
        value = values.get(key)
        if fld.type in (FieldType.BOOLEAN, FieldType.MULTI_CHOICE):
            data[key] = value if value not in ([], None) else None
            continue
        text = str(value or "")
        if text.strip() == "":
            data[key] = None
        elif fld.type == FieldType.JSON:
            try:
                data[key] = json.loads(text)
            except ValueError:
                errors[key] = ['Enter valid JSON, e.g. {"a": 1}, [1, 2] or "text" in quotes.']
        elif fld.type == FieldType.DATETIME:
            data[key] = local_moment(text) or text
        elif fld.type in (FieldType.TEXT, FieldType.LONG_TEXT):
            data[key] = text
        else:
            data[key] = text.strip()
    return data, errors


def required_keys(table: Table, fields: Mapping[str, Field]) -> set[str]:
    ruled = set(
        table.rules.filter(kind=RuleKind.REQUIRED, field__isnull=False).values_list(
            "field__key", flat=True
        )
    )
    return {key for key, fld in fields.items() if fld.required} | ruled


def _reference_choices(
    user: Any, fld: Field, current: str
) -> tuple[list[tuple[str, str]], str | None]:
    """Options for a reference select, or None as the widget when the user may not see the
    referenced table (they then type the record's id)."""
    target = Table.objects.filter(slug=fld.options.get("table")).first()
    if target is None or not can(user, target, Action.VIEW):
        return [], None
    target_fields = reads.fields_of(target)
    shown = list(target.records.order_by("id")[:REFERENCE_OPTIONS])
    if current.isdecimal() and all(str(r.pk) != current for r in shown):
        shown = list(target.records.filter(pk=int(current))) + shown
    return [(str(r.pk), record_label(r, target_fields)) for r in shown], "reference"


def record_inputs(
    user: Any,
    table: Table,
    fields: Mapping[str, Field],
    values: Mapping[str, Any],
    errors: Mapping[str, list[str]] | None = None,
) -> list[RecordInput]:
    errors = errors or {}
    required = required_keys(table, fields)
    inputs = []
    for key, fld in fields.items():
        item = RecordInput(
            field=fld,
            widget=WIDGETS.get(FieldType(fld.type), "text"),
            value=values.get(key, ""),
            errors=list(errors.get(key, [])),
            required=key in required,
        )
        options = fld.options or {}
        if fld.type in (FieldType.CHOICE, FieldType.MULTI_CHOICE):
            item.choices = [(c, c) for c in options.get("choices", [])]
        elif fld.type == FieldType.INTEGER:
            item.step = "1"
        elif fld.type == FieldType.DECIMAL:
            places = options.get("places")
            item.step = f"{10**-places:.{places}f}" if places else "1" if places == 0 else "any"
        elif fld.type == FieldType.DATETIME:
            item.step = "1"
        elif fld.type == FieldType.REFERENCE:
            item.choices, widget = _reference_choices(user, fld, str(item.value))
            if widget is None:
                item.widget = "number"
                item.step = "1"
            else:
                item.lookup_url = reverse("backoffice:record-lookup", args=[table.slug, key])
        inputs.append(item)
    return inputs


def reference_matches(target: Table, text: str) -> list[Record]:
    """Records of ``target`` whose id is ``text`` or whose text-like values contain it."""
    fields = reads.fields_of(target)
    text = text.strip()
    if not text:
        return list(target.records.order_by("id")[:REFERENCE_OPTIONS])
    alternatives: list[dict[str, Any]] = [
        {key: {"$icontains": text}}
        for key, fld in fields.items()
        if fld.type in (FieldType.TEXT, FieldType.EMAIL, FieldType.CHOICE, FieldType.URL)
    ]
    if text.lstrip("#").isdecimal():
        alternatives.append({"id": int(text.lstrip("#"))})
    if not alternatives:
        return []
    found = reads.records_for(target, query={"$or": alternatives}, fields=fields)
    return list(found.order_by("id")[:REFERENCE_OPTIONS])
