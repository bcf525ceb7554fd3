"""From JSON to nodes: every check happens here, once, so the compilers can trust the tree.

Errors name the exact spot (``QueryError.path``) because queries come from API clients and
the filter builder, which must show the user which part to fix.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import NoReturn

from django.conf import settings

from zstorage.errors import QueryError
from zstorage.fields import InvalidValue, kind_of
from zstorage.query.nodes import (
    OPERATORS,
    RECORD_ID,
    And,
    Domain,
    FieldSpec,
    Leaf,
    Node,
    Not,
    Op,
    Operand,
    Or,
    domain_of,
)

#: Integers must fit the 64-bit integers both databases compare exactly.
INT64 = range(-(2**63), 2**63)
#: A decimal operand's exponent stays within ±this: far beyond any stored value (at most 28
#: digits before the point), and within what every engine's numeric type can parse.
DECIMAL_EXPONENTS = 1000

_ID_SPEC = FieldSpec(key=RECORD_ID, type=RECORD_ID)
_ALL_OPERATORS = {"$exists", "$not", "$ne", "$in", "$nin", *(op.value for op in Op)}


#: Defaults for the settings that bound the work one query may ask for.
MAX_DEPTH = 32
MAX_NODES = 2000
MAX_LIST = 1000


@dataclass
class _Budget:
    """How deep and how big a query may be; checked before recursing, so a deeply nested
    query is a 400 and never reaches Python's recursion limit."""

    max_depth: int
    max_nodes: int
    max_list: int
    nodes: int = 0

    def enter(self, depth: int, path: str) -> None:
        if depth > self.max_depth:
            _fail(path, f"the query nests too deeply (at most {self.max_depth} levels).")

    def count(self, path: str, n: int = 1) -> None:
        self.nodes += n
        if self.nodes > self.max_nodes:
            _fail(path, f"the query is too large (at most {self.max_nodes} conditions and values).")

    def list_size(self, size: int, path: str, name: str) -> None:
        if size > self.max_list:
            _fail(path, f"{name} takes at most {self.max_list} values, not {size}.")


def parse(query: object, fields: Mapping[str, FieldSpec]) -> Node:
    budget = _Budget(
        max_depth=getattr(settings, "QUAYMASTER_QUERY_MAX_DEPTH", MAX_DEPTH),
        max_nodes=getattr(settings, "QUAYMASTER_QUERY_MAX_NODES", MAX_NODES),
        max_list=getattr(settings, "QUAYMASTER_QUERY_MAX_LIST", MAX_LIST),
    )
    return _query(query, fields, "", budget, 0)


def _fail(path: str, detail: str) -> NoReturn:
    raise QueryError(detail, path=path or "$")


def _at(path: str, part: str) -> str:
    if not path:
        return part
    return f"{path}{part}" if part.startswith("[") else f"{path}.{part}"


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float | Decimal):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _all(parts: list[Node]) -> Node:
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _query(
    query: object, fields: Mapping[str, FieldSpec], path: str, budget: _Budget, depth: int
) -> Node:
    budget.enter(depth, path)
    budget.count(path)
    if not isinstance(query, dict):
        _fail(path, f"a query must be a JSON object, not {_kind(query)}.")
    parts: list[Node] = []
    for name, value in query.items():
        if not isinstance(name, str):
            _fail(path, f"query keys must be text, not {_kind(name)}.")
        here = _at(path, name)
        if name in ("$and", "$or"):
            if not isinstance(value, list):
                _fail(here, f"{name} takes a list of queries, not {_kind(value)}.")
            if not value:
                _fail(here, f"{name} needs at least one query.")
            budget.list_size(len(value), here, name)
            children = tuple(
                _query(q, fields, _at(here, f"[{i}]"), budget, depth + 1)
                for i, q in enumerate(value)
            )
            parts.append(And(children) if name == "$and" else Or(children))
        elif name == "$not":
            parts.append(Not(_query(value, fields, here, budget, depth + 1)))
        elif name.startswith("$"):
            _fail(here, f"unknown operator {name}; a query combines fields with $and, $or, $not.")
        else:
            spec = _ID_SPEC if name == RECORD_ID else fields.get(name)
            if spec is None:
                _fail(here, f"unknown field {name!r}.")
            parts.append(_field(spec, value, here, budget, depth + 1))
    return _all(parts)


def _field(spec: FieldSpec, condition: object, path: str, budget: _Budget, depth: int) -> Node:
    """One field's condition: a bare value (implicit ``$eq``) or an object of operators."""
    budget.enter(depth, path)
    budget.count(path)
    _domain(spec, path)
    if not isinstance(condition, dict):
        return _leaf(spec, Op.EQ, condition, path)
    if not condition:
        _fail(path, 'give at least one operator, e.g. {"$eq": …}.')
    parts: list[Node] = []
    for name, operand in condition.items():
        here = _at(path, str(name))
        budget.count(here)
        if name not in _ALL_OPERATORS:
            _fail(here, f"unknown operator {name!r}.")
        if name not in ("$exists", "$not") and name not in OPERATORS.get(spec.type, ()):
            allowed = ", ".join([*sorted(OPERATORS.get(spec.type, ())), "$exists", "$not"])
            _fail(here, f"{name} does not apply to a {spec.type} field; use {allowed}.")
        if name == "$exists":
            if not isinstance(operand, bool):
                _fail(here, f"$exists takes true or false, not {_kind(operand)}.")
            exists = Leaf(spec.key, spec.type, _domain(spec, path), Op.EXISTS)
            parts.append(exists if operand else Not(exists))
        elif name == "$not":
            if not isinstance(operand, dict):
                _fail(here, f"$not takes an object of operators, not {_kind(operand)}.")
            parts.append(Not(_field(spec, operand, here, budget, depth + 1)))
        elif name in ("$in", "$nin"):
            if not isinstance(operand, list):
                _fail(here, f"{name} takes a list of values, not {_kind(operand)}.")
            budget.list_size(len(operand), here, name)
            budget.count(here, len(operand))
            any_of = Or(
                tuple(
                    _leaf(spec, Op.EQ, item, _at(here, f"[{i}]")) for i, item in enumerate(operand)
                )
            )
            parts.append(any_of if name == "$in" else Not(any_of))
        elif name == "$ne":
            parts.append(Not(_leaf(spec, Op.EQ, operand, here)))
        else:
            parts.append(_leaf(spec, Op(name), operand, here))
    return _all(parts)


def _domain(spec: FieldSpec, path: str) -> Domain:
    domain = domain_of(spec.type)
    if domain is None:
        _fail(path, f"fields of type {spec.type!r} cannot be queried.")
    return domain


def _leaf(spec: FieldSpec, op: Op, raw: object, path: str) -> Leaf:
    domain = _domain(spec, path)
    return Leaf(spec.key, spec.type, domain, op, _operand(spec, domain, op, raw, path))


def _operand(spec: FieldSpec, domain: Domain, op: Op, raw: object, path: str) -> Operand:
    """The operand checked against the field type and normalised to the stored form."""
    if raw is None:
        _fail(path, 'null is not a value to compare with; use {"$exists": false}.')
    if op in (Op.CONTAINS, Op.ICONTAINS, Op.STARTSWITH) or domain is Domain.TEXT:
        what = op.value if op in (Op.CONTAINS, Op.ICONTAINS, Op.STARTSWITH) else None
        text = _text(raw, path, what or f"a {spec.type} field")
        try:
            # As the type stores it (a canonical date, a phone number without spaces).
            return kind_of(spec.type).query_operand(op.value, text, spec.options)
        except InvalidValue as error:
            _fail(path, str(error))
    if domain in (Domain.INTEGER, Domain.RECORD_ID):
        if isinstance(raw, bool) or not isinstance(raw, int):
            _fail(path, f"a {spec.type} field compares with a whole number, not {_kind(raw)}.")
        if raw not in INT64:
            _fail(path, "the number is out of range (64-bit integers).")
        return raw
    if domain is Domain.DECIMAL:
        return _decimal(raw, path)
    if domain is Domain.BOOLEAN:
        if not isinstance(raw, bool):
            _fail(path, f"a boolean field compares with true or false, not {_kind(raw)}.")
        return raw
    if domain is Domain.JSON:
        if isinstance(raw, float) and not math.isfinite(raw):
            _fail(path, "the number must be finite.")
        if not isinstance(raw, str | int | float):
            _fail(
                path, f"a json field compares with text, a number or a boolean, not {_kind(raw)}."
            )
        return _text(raw, path, "a json field") if isinstance(raw, str) else raw
    # Domain.SET: $eq takes the whole set of choices.
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        _fail(path, f"a multi_choice field compares with a list of texts, not {_kind(raw)}.")
    return tuple(dict.fromkeys(_text(item, _at(path, f"[{i}]"), "") for i, item in enumerate(raw)))


def _text(raw: object, path: str, what: str) -> str:
    if not isinstance(raw, str):
        _fail(path, f"{what} compares with text, not {_kind(raw)}.")
    if "\x00" in raw:
        _fail(path, "text cannot contain the NUL character.")
    return raw


def _decimal(raw: object, path: str) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str | Decimal):
        _fail(path, f"a decimal field compares with a number, not {_kind(raw)}.")
    try:
        # repr() of a float is its shortest spelling: 0.1 stays 0.1, not 0.1000000000000000055…
        number = Decimal(repr(raw) if isinstance(raw, float) else raw)
    except InvalidOperation:
        _fail(path, f"{raw!r} is not a number.")
    if not number.is_finite():
        _fail(path, "the number must be finite.")
    if number and not -DECIMAL_EXPONENTS <= number.adjusted() < DECIMAL_EXPONENTS:
        _fail(path, f"the number is out of range (at most 1e{DECIMAL_EXPONENTS}).")
    return number
