"""Database expressions for a field's value inside ``Record.data``, typed by the field.

Sorting and aggregation compare values in the database the way the query language does
(``zstorage/query/sql.py``, whose expressions these reuse): a missing key and JSON null are
both SQL NULL, numbers (integer, decimal, reference) are cast to NUMERIC, and text compares
in code point order (dates and datetimes are stored in canonical forms whose text order is
time order).
"""

from __future__ import annotations

from django.db.models import DecimalField, Expression
from django.db.models.functions import Cast

from zstorage.fields import kind_of
from zstorage.query.sql import Bytewise, JsonText

NUMBER = DecimalField(max_digits=40, decimal_places=12)


def text_of(key: str) -> Expression:
    """``data[key]`` as text; NULL when absent or null."""
    return JsonText(key)


def value_of(key: str, field_type: str) -> Expression:
    """The typed value of ``data[key]``; NULL when the key is absent or null."""
    if kind_of(field_type).numeric:
        return Cast(JsonText(key), output_field=NUMBER)
    return Bytewise(JsonText(key))
