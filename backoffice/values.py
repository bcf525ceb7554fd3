"""How stored values meet people: shown in lists and audit rows, and naming records.

Stored values are canonical; how each type reads (a local date and time, "Yes", a grouped
phone number) is its field type's ``display`` (``zstorage.fields``). This module applies it to
a field and names records by their first labelling value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from zstorage.fields import kind_of
from zstorage.models import Field, Record


def display_value(field: Field, value: Any) -> str:
    if value is None:
        return ""
    try:
        return kind_of(field.type).display(value)
    except ValueError:
        return str(value)


def record_label(record: Record, fields: Mapping[str, Field], display: str | None = None) -> str:
    """A short name for a record: its id and its table's display field (``display``), or
    else the first text-like value it has."""
    if display and record.data.get(display):
        return f"#{record.pk} {record.data[display]}"
    for key, field in fields.items():
        value = record.data.get(key)
        if value and kind_of(field.type).labels_records:
            return f"#{record.pk} {value}"
    return f"#{record.pk}"


def label_conditions(fields: Mapping[str, Field], text: str) -> list[dict[str, Any]]:
    """Query-language conditions matching the records whose label contains ``text`` (any of
    their text-like values), one per such field; none when the table has no such field."""
    return [
        {key: {"$icontains": text}}
        for key, field in fields.items()
        if kind_of(field.type).labels_records
    ]


def change_rows(
    changes: Mapping[str, Any],
    fields: Mapping[str, Field],
    references: Callable[[str, Any], str] | None = None,
) -> list[tuple[str, str, str]]:
    """An audit row's ``{key: [old, new]}`` as (label, old, new) texts in the table's field
    order; keys of fields deleted since keep their key as the label. ``references(key,
    value)`` names a reference field's value ("#31 Ada Lovelace"), where the page knows it."""
    ordered = [k for k in fields if k in changes] + sorted(k for k in changes if k not in fields)
    rows = []
    for key in ordered:
        old, new = [*list(changes[key]), None, None][:2]
        field = fields.get(key)
        if field is None:
            rows.append((key, "" if old is None else str(old), "" if new is None else str(new)))
        elif references is not None and kind_of(field.type).linked_table(field.options or {}):
            rows.append(
                (
                    field.name,
                    "" if old is None else references(key, old),
                    "" if new is None else references(key, new),
                )
            )
        else:
            rows.append((field.name, display_value(field, old), display_value(field, new)))
    return rows


_LITERAL = re.compile(r"``(.+?)``")


def docstring_html(text: str) -> SafeString:
    """A docstring (a job's, a handler's) as HTML: escaped, its ``literals`` as code, its line
    breaks kept."""
    html = _LITERAL.sub(r"<code>\1</code>", str(escape(text)))
    return mark_safe(html.replace("\n", "<br>"))  # escaped above
