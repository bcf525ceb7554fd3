"""Cross-field rule expressions, such as ``end_date >= start_date`` or
``discount <= total * 0.5 and (status != "draft" or total > 0)``.

Parsed with Python's own grammar but evaluated by a small interpreter that accepts only
comparisons, ``and``/``or``/``not``, arithmetic, field names and literals, so an admin's rule
can never run code. Numbers are compared as decimals; dates and datetimes as their canonical
text (which orders like time). An expression that names an absent field is not applied.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_ARITHMETIC: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


class ExpressionError(ValueError):
    pass


class _Absent(Exception):
    """An operand is missing: the rule does not apply to this record."""


_ALLOWED = (
    ast.Expression, ast.Compare, ast.BoolOp, ast.UnaryOp, ast.BinOp, ast.Name, ast.Constant,
    ast.Load, ast.And, ast.Or, ast.Not, ast.USub, *_COMPARE, *_ARITHMETIC,
)  # fmt: skip


def parse_expression(source: str, known_fields: set[str]) -> ast.Expression:
    """Parse and check an expression once, when the rule is saved."""
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"Not a valid expression: {exc.msg}.") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in known_fields | {"true", "false", "null"}:
            raise ExpressionError(f"Unknown field {node.id!r} in the expression.")
        if not isinstance(node, _ALLOWED):
            raise ExpressionError(f"{type(node).__name__} is not allowed in a rule expression.")
    return tree


def fields_of(tree: ast.Expression) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - {"true", "false", "null"}


def holds(tree: ast.Expression, data: Mapping[str, Any]) -> bool:
    """True when the expression holds, or when it names a field the record lacks."""
    try:
        return bool(_eval(tree.body, data))
    except _Absent:
        return True
    except (TypeError, ArithmeticError, InvalidOperation):
        return False


def _value(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    if isinstance(value, str):
        try:
            return Decimal(value)
        except InvalidOperation:
            return value
    return value


def _eval(node: ast.expr, data: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return _value(node.value)
    if isinstance(node, ast.Name):
        literal = {"true": True, "false": False, "null": None}
        if node.id in literal:
            return literal[node.id]
        if data.get(node.id) is None:
            raise _Absent
        return _value(data[node.id])
    if isinstance(node, ast.BoolOp):
        values = (_eval(v, data) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, data)
        return (not operand) if isinstance(node.op, ast.Not) else -operand
    if isinstance(node, ast.BinOp):
        return _ARITHMETIC[type(node.op)](_eval(node.left, data), _eval(node.right, data))
    if isinstance(node, ast.Compare):
        left = _eval(node.left, data)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _eval(right_node, data)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    raise ExpressionError(f"{type(node).__name__} is not allowed in a rule expression.")
