"""The parsed form of a query: a few frozen node types that both compilers walk.

Parsing reduces the surface syntax to this core so each compiler has little to get wrong:
``$ne`` is ``Not(eq)``, ``$nin`` is ``Not(Or(eq…))``, ``$in`` is ``Or(eq…)``, ``$exists: false``
is ``Not(exists)``, several operators on one field are an ``And``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from zstorage.fields import Domain, InvalidValue, kind_of, registered_types
from zstorage.fields.base import COMPARE

if TYPE_CHECKING:
    from zstorage.models import Field

#: The pseudo-field naming the record's own id (the ``id`` column, not a key in ``data``).
RECORD_ID = "id"


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


def domain_of(field_type: str) -> Domain | None:
    """How values of the type compare; None for a type the language cannot query."""
    if field_type == RECORD_ID:
        return Domain.RECORD_ID
    try:
        return kind_of(field_type).domain
    except InvalidValue:
        return None


class _Operators(Mapping[str, frozenset[str]]):
    """The operators each field type accepts (``$exists`` and ``$not`` apply to every type),
    read from the field-type registry; the ``id`` pseudo-field compares like a number."""

    def __getitem__(self, field_type: str) -> frozenset[str]:
        if field_type == RECORD_ID:
            return COMPARE
        try:
            return kind_of(field_type).operators
        except InvalidValue:
            raise KeyError(field_type) from None

    def __iter__(self) -> Iterator[str]:
        return iter([*registered_types(), RECORD_ID])

    def __len__(self) -> int:
        return len(registered_types()) + 1


OPERATORS: Mapping[str, frozenset[str]] = _Operators()
