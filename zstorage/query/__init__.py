"""ZStorage's query language: one JSON filter, parsed once, run by the database or in memory.

A query is a JSON object, MongoDB-style::

    {"status": "paid"}                                  implicit $eq
    {"total": {"$gt": 10, "$lte": 100}}                 several operators on a field: AND
    {"$or": [{"status": "paid"}, {"total": {"$gte": 1000}}]}
    {"$not": {"tags": {"$contains": "urgent"}}}         also {"total": {"$not": {"$gt": 5}}}
    {"customer": {"$in": [1, 2]}, "id": {"$gt": 100}}   references and the record id
    {}                                                  every record

``compile_query(query, fields)`` checks it against the table's fields and returns a ``Query``
with ``matches(data, record_id=None)`` (in memory) and ``to_q()`` (a filter over ``Record``).
The two agree exactly, on PostgreSQL and SQLite; ``tests/zstorage/test_query_agreement.py``
checks that with generated records and queries.

Semantics
---------
* **Absent.** A missing key and a JSON ``null`` are the same: absent. ``$exists: true`` means
  present and not null. Every comparison (``$eq``, ``$gt``…, ``$in``, ``$contains``…) is false
  on an absent value; ``$ne``, ``$nin`` and ``$exists: false`` are true on it (as in MongoDB).
  ``$not`` is the exact complement of its sub-query, absent values included. ``null`` is not
  a value to compare with: write ``{"$exists": false}``.
* **Types.** Values are typed by the field, and the operand must have that type:
  integer and reference fields compare with whole numbers (64-bit); decimal fields with a
  number or a numeric text, numerically (decimals are stored as plain-notation texts such as
  ``"12.50"``, so ``"9.5" < "10.25"``; stored JSON numbers are read too); text, long_text,
  email, url and choice fields with text, in Unicode code point order (PostgreSQL's "C"
  collation, SQLite's BINARY, Python's ``str``); date and datetime fields with text, normalised
  as stored (``YYYY-MM-DD``; UTC ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, a time without an offset
  read as UTC) so that text order is time order. Each field type says how its values compare
  and normalises its text operands (``domain``, ``query_operand`` in ``zstorage.fields``; a
  type added there, such as phone, describes its own).
* **Operators by type** (``FieldKind.operators``). ``$exists`` and ``$not`` apply to every
  field. Text-like fields:
  ``$eq $ne $gt $gte $lt $lte $in $nin $contains $icontains $startswith``. Date, datetime,
  integer, reference, decimal and ``id``: ``$eq $ne $gt $gte $lt $lte $in $nin``. Boolean:
  ``$eq $ne $in $nin``. JSON: ``$eq $ne`` with a text, number or boolean, equal when the stored
  value has the same JSON type and value (``true`` is not ``1``; ``1`` is ``1.0``).
  Multi-choice: ``$contains`` (the list holds the choice) and ``$eq``/``$ne`` with a list (the
  same set of choices, in any order).
* **Case.** ``$icontains`` folds only ASCII letters A-Z; other characters match exactly.
  Unicode case folding differs between PostgreSQL's locales, SQLite and Python, so it is not
  offered rather than offered differently.
* **id.** ``id`` is the record id (the pseudo-field wins over a field keyed ``id``). A record
  not yet saved has no id: ``matches(data)`` treats it as absent.
* **Limits.** On SQLite, decimals compare as 64-bit floats (exact to 15 significant digits).
  Values of the wrong JSON type for their field, which the records service never writes,
  match nothing in memory; the database may read them differently.
* **Errors.** Anything else raises ``QueryError`` (``code = "invalid_query"``) whose ``path``
  names the spot, e.g. ``"$and[1].total.$gt"`` (``"$"`` for the whole query): a non-object
  query, an unknown field or operator, an operator the field type does not support, an
  operand of the wrong type (a text for ``$gt`` on an integer, ``$in`` without a list,
  ``$exists`` without a boolean), an empty ``$and``/``$or`` or operator object. ``$in: []`` is
  allowed and matches nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from zstorage.errors import QueryError
from zstorage.models import Field
from zstorage.query.match import matches
from zstorage.query.nodes import FieldSpec, Node
from zstorage.query.parse import parse
from zstorage.query.sql import to_q

__all__ = ["FieldSpec", "Query", "QueryError", "compile_query"]

Fields = Mapping[str, FieldSpec | Field] | Iterable[FieldSpec | Field]


@dataclass(frozen=True)
class Query:
    """A checked query. Immutable, so one compiled subscription can serve many records."""

    node: Node

    def matches(self, data: Mapping[str, Any], record_id: int | None = None) -> bool:
        """Whether a record with this ``data`` (and id, for the ``id`` pseudo-field) matches."""
        return matches(self.node, data, record_id)

    def to_q(self) -> Q:
        """The same test as a filter: ``Record.objects.filter(table=t).filter(q.to_q())``."""
        return to_q(self.node)


def compile_query(query: object, fields: Fields) -> Query:
    """Parse and check ``query`` against the table's fields; raises ``QueryError``."""
    items = fields.values() if isinstance(fields, Mapping) else fields
    specs = {}
    for item in items:
        spec = item if isinstance(item, FieldSpec) else FieldSpec.of(item)
        specs[spec.key] = spec
    return Query(parse(query, specs))
