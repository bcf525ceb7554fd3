"""Database expressions for a field's value inside ``Record.data``, typed by the field.

Sorting, aggregation and the query language compare values in the database; a raw JSON
comparison would order numbers and strings by JSON type rules, so each type gets an explicit
cast: numbers (integer, decimal, reference) become NUMERIC, everything else text (dates and
datetimes are stored in canonical forms whose text order is time order).
"""

from __future__ import annotations

from django.db.models import DecimalField, Expression
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from zstorage.field_types import kind_of

NUMBER = DecimalField(max_digits=40, decimal_places=12)


def text_of(key: str) -> KeyTextTransform:
    return KeyTextTransform(key, "data")


def value_of(key: str, field_type: str) -> Expression:
    """The typed value of ``data[key]``; NULL when the key is absent or null."""
    if kind_of(field_type).numeric:
        return Cast(text_of(key), output_field=NUMBER)
    return text_of(key)
