"""The database compiler: a ``Q`` over ``Record`` that selects what ``match.py`` accepts.

Three traps decide its shape:

* SQL's three-valued logic. ``NOT (x > 5)`` is NULL, not TRUE, when ``x`` is NULL, so a naive
  ``~Q`` would drop absent values that ``$ne``/``$nin``/``$not`` must keep. Every leaf is
  compiled as ``present AND test``, where ``test`` is never NULL for a present value: the leaf
  is then always TRUE or FALSE, and ``NOT`` is an exact complement.
* Backend JSON differences. Django's ``KeyTextTransform`` yields SQL NULL for a JSON null on
  PostgreSQL but the text ``'null'`` on SQLite, and raw JSON comparisons order across JSON
  types (PostgreSQL) or lose them (SQLite: ``true = 1``). So the expressions below are written
  per vendor: ``->>``/``@>``/``<@`` on jsonb, ``JSON_EXTRACT``/``JSON_TYPE``/``JSON_EACH`` on
  SQLite, with explicit casts (numbers to NUMERIC) and type checks.
* Collation. Text order is code point order (``COLLATE "C"`` on PostgreSQL, SQLite's BINARY),
  as in Python and as canonical dates need; case folding is ASCII-only everywhere.

Equality on PostgreSQL is written as jsonb containment (``data @> {"k": v}``) so the GIN index
of migration 0002 serves the commonest filters.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import NotSupportedError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, DecimalField, F, Func, Q, TextField, Value
from django.db.models.functions import StrIndex
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    IsNull,
    LessThan,
    LessThanOrEqual,
    Lookup,
)
from django.db.models.sql.compiler import SQLCompiler

from zstorage.query.match import ascii_lower
from zstorage.query.nodes import And, Domain, Leaf, Node, Not, Op, Or

SqlParams = tuple[str, tuple[Any, ...]]

_LOOKUPS: dict[Op, type[Lookup[Any]]] = {
    Op.EQ: Exact,
    Op.GT: GreaterThan,
    Op.GTE: GreaterThanOrEqual,
    Op.LT: LessThan,
    Op.LTE: LessThanOrEqual,
}


def to_q(node: Node) -> Q:
    if isinstance(node, And):
        q = Q()
        for child in node.children:
            q &= to_q(child)
        return q
    # An empty Q matches everything, but Django drops it from ``|`` and from ``~``: an
    # ``Or`` holding one matches everything, and its negation is "nothing".
    if isinstance(node, Or):
        q = _NOTHING
        for child in node.children:
            alternative = to_q(child)
            if not alternative:
                return Q()
            q = alternative if q is _NOTHING else q | alternative
        return q
    if isinstance(node, Not):
        inner = to_q(node.child)
        return ~inner if inner else _NOTHING
    return _leaf(node)


_NOTHING = Q(pk__in=[])


def _leaf(leaf: Leaf) -> Q:
    if leaf.domain is Domain.RECORD_ID:
        if leaf.op is Op.EXISTS:
            return Q(pk__isnull=False)
        return Q(_LOOKUPS[leaf.op](F("pk"), leaf.value))
    present = Q(IsNull(JsonText(leaf.key), False))
    if leaf.op is Op.EXISTS:
        return present
    return present & _test(leaf)


def _test(leaf: Leaf) -> Q:
    """The comparison for a present value; never NULL then (see the module docstring)."""
    key, op, value = leaf.key, leaf.op, leaf.value
    text = JsonText(key)
    match leaf.domain:
        case Domain.TEXT if op is Op.CONTAINS:
            return Q(GreaterThan(StrIndex(text, _text(value)), 0))
        case Domain.TEXT if op is Op.ICONTAINS:
            folded = ascii_lower(str(value))
            return Q(GreaterThan(StrIndex(AsciiLower(text), _text(folded)), 0))
        case Domain.TEXT if op is Op.STARTSWITH:
            return Q(Exact(StrIndex(text, _text(value)), 1))
        case Domain.TEXT | Domain.INTEGER | Domain.BOOLEAN | Domain.JSON if op is Op.EQ:
            return Q(JsonEquals(key, value))
        case Domain.TEXT:
            return Q(_LOOKUPS[op](Bytewise(text), value))
        case Domain.INTEGER | Domain.DECIMAL:
            return Q(_LOOKUPS[op](AsNumber(text), value))
        case Domain.SET if op is Op.CONTAINS:
            return Q(ArrayContains(key, value))
        case Domain.SET:
            assert isinstance(value, tuple)
            q = Q(ArrayWithin(key, value))
            for item in value:
                q &= Q(ArrayContains(key, item))
            return q
    raise AssertionError(leaf)


def _text(value: object) -> Value:
    return Value(str(value), output_field=TextField())


# Expressions over Record.data -----------------------------------------------------------------


class _OnData(Func):
    """An expression over ``data[key]``, written for PostgreSQL's jsonb and SQLite's JSON1."""

    def __init__(self, key: str, output_field: Any) -> None:
        super().__init__(F("data"), output_field=output_field)
        self.key = key

    def _data(self, compiler: SQLCompiler) -> SqlParams:
        sql, params = compiler.compile(self.get_source_expressions()[0])
        return sql, tuple(params)

    @property
    def path(self) -> str:
        return "$." + json.dumps(self.key)  # as Django's compile_json_path spells it

    def as_sql(  # type: ignore[override]
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> SqlParams:
        raise NotSupportedError(
            f"ZStorage queries need PostgreSQL or SQLite, not {connection.display_name}."
        )


class JsonText(_OnData):
    """``data[key]`` as SQL text or number; NULL when the key is missing or holds JSON null."""

    def __init__(self, key: str) -> None:
        super().__init__(key, TextField())

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> SqlParams:
        data, params = self._data(compiler)
        return f"({data} ->> %s)", (*params, self.key)

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> SqlParams:
        data, params = self._data(compiler)
        return f"JSON_EXTRACT({data}, %s)", (*params, self.path)


class JsonEquals(_OnData):
    """``data[key]`` is this JSON scalar: same JSON type, same value (``true`` is not ``1``)."""

    def __init__(self, key: str, value: Any) -> None:
        super().__init__(key, BooleanField())
        self.value = value

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> SqlParams:
        data, params = self._data(compiler)
        return f"({data} @> %s::jsonb)", (*params, json.dumps({self.key: self.value}))

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> SqlParams:
        data, params = self._data(compiler)
        if isinstance(self.value, bool):
            return f"(JSON_TYPE({data}, %s) = %s)", (
                *params,
                self.path,
                "true" if self.value else "false",
            )
        types = "'text'" if isinstance(self.value, str) else "'integer', 'real'"
        sql = f"(JSON_TYPE({data}, %s) IN ({types}) AND JSON_EXTRACT({data}, %s) = %s)"
        return sql, (*params, self.path, *params, self.path, self.value)


class ArrayContains(_OnData):
    """``data[key]`` is a JSON list holding this text."""

    def __init__(self, key: str, item: Any) -> None:
        super().__init__(key, BooleanField())
        self.item = item

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> SqlParams:
        data, params = self._data(compiler)
        return f"({data} @> %s::jsonb)", (*params, json.dumps({self.key: [self.item]}))

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> SqlParams:
        data, params = self._data(compiler)
        sql = (
            f"(JSON_TYPE({data}, %s) = 'array' AND EXISTS (SELECT 1 FROM JSON_EACH({data}, %s)"
            " AS zq_item WHERE zq_item.type = 'text' AND zq_item.value = %s))"
        )
        return sql, (*params, self.path, *params, self.path, self.item)


class ArrayWithin(_OnData):
    """``data[key]`` is a JSON list of texts, each one of ``items``."""

    def __init__(self, key: str, items: tuple[str, ...]) -> None:
        super().__init__(key, BooleanField())
        self.items = items

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> SqlParams:
        data, params = self._data(compiler)
        sql = f"(jsonb_typeof({data} -> %s) = 'array' AND ({data} -> %s) <@ %s::jsonb)"
        return sql, (*params, self.key, *params, self.key, json.dumps(list(self.items)))

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> SqlParams:
        data, params = self._data(compiler)
        allowed = ", ".join(["%s"] * len(self.items))
        stranger = (
            f"NOT (zq_item.type = 'text' AND zq_item.value IN ({allowed}))" if self.items else "1"
        )
        sql = (
            f"(JSON_TYPE({data}, %s) = 'array' AND NOT EXISTS (SELECT 1 FROM JSON_EACH({data}, %s)"
            f" AS zq_item WHERE {stranger}))"
        )
        return sql, (*params, self.path, *params, self.path, *self.items)


class AsNumber(Func):
    """Numbers compare as numbers: NUMERIC is exact on PostgreSQL; on SQLite it is a 64-bit
    integer or float (exact to 15 significant digits)."""

    template = "CAST(%(expressions)s AS NUMERIC)"
    output_field = DecimalField()


class Bytewise(Func):
    """Code point order, as Python orders ``str``: the "C" collation on PostgreSQL; SQLite
    compares with BINARY already."""

    template = "%(expressions)s"
    output_field = TextField()

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> SqlParams:
        return self.as_sql(compiler, connection, template='(%(expressions)s) COLLATE "C"', **extra)


class AsciiLower(Func):
    """Lower-cases A-Z only, whatever the database locale: SQLite's lower() does exactly that;
    PostgreSQL's lower() follows the locale, so it gets translate()."""

    function = "LOWER"
    output_field = TextField()

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> SqlParams:
        template = (
            "TRANSLATE(%(expressions)s, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"
        )
        return self.as_sql(compiler, connection, template=template, **extra)
