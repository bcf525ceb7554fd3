"""Record forms generated from a table's fields.

A form here only translates: stored values to what each input shows, and submitted inputs
back to values ``zstorage.records`` accepts, both as each field type says (``widget``,
``input_value``, ``submitted``, ``from_input`` in ``zstorage.fields``). Validation is the
records service's (``RecordInvalid`` with errors keyed by field), the same the API runs, so a
page never accepts what the API would refuse or the other way round. The one error found here
is what a type's ``from_input`` refuses: text that is not JSON in a JSON field, which the
service would otherwise store as a string.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.http import QueryDict
from django.urls import reverse

from backoffice.values import label_conditions, record_label
from zstorage import reads
from zstorage.fields import InvalidValue, kind_of
from zstorage.models import Field, Record, Table
from zstorage.permissions import Action, can
from zstorage.rules import rule_type

PREFIX = "f_"
#: How many records a reference select lists before the person searches.
REFERENCE_OPTIONS = 50


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
    #: More attributes of the input, from the field type (``autocomplete``, ``placeholder``).
    attrs: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def name(self) -> str:
        return input_name(self.field.key)

    @property
    def id(self) -> str:
        return f"id_{self.name}"


def stored_values(fields: Mapping[str, Field], data: Mapping[str, Any]) -> dict[str, Any]:
    """What each input shows for a stored record (or a new one: the fields' defaults)."""
    return {key: kind_of(fld.type).input_value(data.get(key)) for key, fld in fields.items()}


def default_values(fields: Mapping[str, Field]) -> dict[str, Any]:
    return stored_values(fields, {k: f.default for k, f in fields.items() if f.default is not None})


def submitted_values(fields: Mapping[str, Field], post: QueryDict) -> dict[str, Any]:
    """What the person sent, as the inputs show it again when the form has errors."""
    return {key: kind_of(fld.type).submitted(post, input_name(key)) for key, fld in fields.items()}


def to_data(
    fields: Mapping[str, Field], values: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Submitted values → the data the records service takes, and the errors found on the way.

    Every field is present, a blank one as None, so an update clears what was emptied."""
    data: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for key, fld in fields.items():
        try:
            data[key] = kind_of(fld.type).from_input(values.get(key))
        except InvalidValue as exc:
            errors[key] = [str(exc)]
    return data, errors


def required_keys(table: Table, fields: Mapping[str, Field]) -> set[str]:
    ruled = {
        rule.field.key
        for rule in table.rules.filter(field__isnull=False).select_related("field")
        if rule.field is not None and rule_type(rule.kind).checks_blank
    }
    return {key for key, fld in fields.items() if fld.required} | ruled


def linked_table(user: Any, fld: Field) -> Table | None:
    """The table whose records ``fld``'s values are (a reference's), if ``user`` may see it."""
    slug = kind_of(fld.type).linked_table(fld.options or {})
    target = Table.objects.filter(slug=slug).first() if slug else None
    return target if target is not None and can(user, target, Action.VIEW) else None


def _reference_choices(
    user: Any, fld: Field, current: str
) -> tuple[list[tuple[str, str]], str | None]:
    """Options for a reference select, or None as the widget when the user may not see the
    referenced table (they then type the record's id)."""
    target = linked_table(user, fld)
    if target is None:
        return [], None
    target_fields = reads.fields_of(target)
    shown = list(target.records.order_by("id")[:REFERENCE_OPTIONS])
    if current.isdecimal() and all(str(r.pk) != current for r in shown):
        shown = list(target.records.filter(pk=int(current))) + shown
    return [
        (str(r.pk), record_label(r, target_fields, target.display_field)) for r in shown
    ], "reference"


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
        kind = kind_of(fld.type)
        options = fld.options or {}
        attrs = kind.input_attrs(options)
        item = RecordInput(
            field=fld,
            widget=kind.widget,
            value=values.get(key, ""),
            errors=list(errors.get(key, [])),
            required=key in required,
            choices=kind.input_choices(options),
            step=attrs.pop("step", None),
            attrs=attrs,
        )
        if kind.widget == "reference":
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
    alternatives = label_conditions(fields, text)
    if text.lstrip("#").isdecimal():
        alternatives.append({"id": int(text.lstrip("#"))})
    if not alternatives:
        return []
    found = reads.records_for(target, query={"$or": alternatives}, fields=fields)
    return list(found.order_by("id")[:REFERENCE_OPTIONS])
