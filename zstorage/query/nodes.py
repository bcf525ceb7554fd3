"""The parsed form of a query: a few frozen node types that both compilers walk.

Parsing reduces the surface syntax to this core so each compiler has little to get wrong:
``$ne`` is ``Not(eq)``, ``$nin`` is ``Not(Or(eq…))``, ``$in`` is ``Or(eq…)``, ``$exists: false``
is ``Not(exists)``, several operators on one field are an ``And``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from zstorage.models import FieldType

if TYPE_CHECKING:
    from zstorage.models import Field

#: The pseudo-field naming the record's own id (the ``id`` column, not a key in ``data``).
RECORD_ID = "id"


class Domain(enum.Enum):
    """How a field's stored values compare; several field types share one domain."""

    TEXT = "text"  # JSON strings, compared code point by code point
    INTEGER = "integer"  # JSON integers (integer fields, references)
    DECIMAL = "decimal"  # plain-notation strings such as "12.50", compared as numbers
    BOOLEAN = "boolean"
    JSON = "json"  # any JSON; compared only to scalars, type and value
    SET = "set"  # a JSON list of choice strings (multi_choice)
    RECORD_ID = "record_id"


class Op(enum.StrEnum):
    """The leaf operators left after parsing (negated forms are ``Not`` nodes)."""

    EXISTS = "$exists"
    EQ = "$eq"
    GT = "$gt"
    GTE = "$gte"
    LT = "$lt"
    LTE = "$lte"
    CONTAINS = "$contains"
    ICONTAINS = "$icontains"
    STARTSWITH = "$startswith"


ORDERING = frozenset({Op.GT, Op.GTE, Op.LT, Op.LTE})

#: A leaf's operand once parsed: normalised for its domain (canonical date texts, Decimals…).
Operand = str | int | float | bool | Decimal | tuple[str, ...] | None


@dataclass(frozen=True)
class FieldSpec:
    """What the query language needs to know of a field, so queries compile without a database
    round trip (and in tests without any model instance)."""

    key: str
    type: str
    options: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @classmethod
    def of(cls, fld: Field) -> FieldSpec:
        return cls(key=fld.key, type=str(fld.type), options=dict(fld.options or {}))


@dataclass(frozen=True)
class Leaf:
    key: str
    type: str  # the field type, kept for error messages and date normalisation
    domain: Domain
    op: Op
    value: Operand = None


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


Node = Leaf | And | Or | Not

DOMAINS: dict[str, Domain] = {
    FieldType.TEXT: Domain.TEXT,
    FieldType.LONG_TEXT: Domain.TEXT,
    FieldType.EMAIL: Domain.TEXT,
    FieldType.URL: Domain.TEXT,
    FieldType.CHOICE: Domain.TEXT,
    FieldType.DATE: Domain.TEXT,
    FieldType.DATETIME: Domain.TEXT,
    FieldType.INTEGER: Domain.INTEGER,
    FieldType.REFERENCE: Domain.INTEGER,
    FieldType.DECIMAL: Domain.DECIMAL,
    FieldType.BOOLEAN: Domain.BOOLEAN,
    FieldType.JSON: Domain.JSON,
    FieldType.MULTI_CHOICE: Domain.SET,
    RECORD_ID: Domain.RECORD_ID,
}

_SUBSTRING = frozenset({"$contains", "$icontains", "$startswith"})
_COMPARE = frozenset({"$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte"})
_EQUALITY = frozenset({"$eq", "$ne", "$in", "$nin"})

#: The operators each field type accepts (``$exists`` and ``$not`` apply to every type).
OPERATORS: dict[str, frozenset[str]] = {
    **{t: _COMPARE | _SUBSTRING for t in ("text", "long_text", "email", "url", "choice")},
    "date": _COMPARE,
    "datetime": _COMPARE,
    "integer": _COMPARE,
    "reference": _COMPARE,
    "decimal": _COMPARE,
    RECORD_ID: _COMPARE,
    "boolean": _EQUALITY,
    "json": frozenset({"$eq", "$ne"}),
    "multi_choice": frozenset({"$eq", "$ne", "$contains"}),
}
