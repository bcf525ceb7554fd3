"""How stored values meet people: shown in lists, put into form inputs, read back from them.

Stored values are canonical (``zstorage.field_types``); a person sees datetimes in the
site's time zone and types them without an offset, so the conversion lives here, once.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from zstorage.field_types import kind_of
from zstorage.models import Field, FieldType, Record

#: Types whose value can label a record in a reference select ("#12 Ada Lovelace").
LABEL_TYPES = {FieldType.TEXT, FieldType.EMAIL, FieldType.CHOICE, FieldType.URL}


def stored_moment(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = parse_datetime(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return timezone.localtime(moment) if moment and moment.tzinfo else moment


def display_value(field: Field, value: Any) -> str:
    if value is None:
        return ""
    if field.type == FieldType.DATETIME:
        moment = stored_moment(value)
        if moment is not None:
            return moment.strftime("%Y-%m-%d %H:%M" if not moment.second else "%Y-%m-%d %H:%M:%S")
    try:
        return kind_of(field.type).display(value)
    except ValueError:
        return str(value)


def input_text(field: Field, value: Any) -> str:
    """The text an ``<input>`` shows for a stored value."""
    if value is None:
        return ""
    if field.type == FieldType.DATETIME:
        moment = stored_moment(value)
        return moment.strftime("%Y-%m-%dT%H:%M:%S") if moment else str(value)
    if field.type == FieldType.JSON:
        return json.dumps(value, indent=2, ensure_ascii=False)
    if field.type == FieldType.MULTI_CHOICE and isinstance(value, list):
        return ", ".join(value)
    return str(value)


def local_moment(text: str) -> dt.datetime | None:
    """A ``datetime-local`` input's text as an aware datetime in the site's time zone."""
    try:
        moment = parse_datetime(text.strip())
    except ValueError:
        return None
    if moment is None:
        return None
    return moment if moment.tzinfo else timezone.make_aware(moment)


def record_label(record: Record, fields: Mapping[str, Field]) -> str:
    """A short name for a record: its id and the first text-like value it has."""
    for key, field in fields.items():
        value = record.data.get(key)
        if field.type in LABEL_TYPES and value:
            return f"#{record.pk} {value}"
    return f"#{record.pk}"


def change_rows(
    changes: Mapping[str, Any], fields: Mapping[str, Field]
) -> list[tuple[str, str, str]]:
    """An audit row's ``{key: [old, new]}`` as (label, old, new) texts in the table's field
    order; keys of fields deleted since keep their key as the label."""
    ordered = [k for k in fields if k in changes] + sorted(k for k in changes if k not in fields)
    rows = []
    for key in ordered:
        old, new = [*list(changes[key]), None, None][:2]
        field = fields.get(key)
        if field is None:
            rows.append((key, "" if old is None else str(old), "" if new is None else str(new)))
        else:
            rows.append((field.name, display_value(field, old), display_value(field, new)))
    return rows
