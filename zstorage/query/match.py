"""The in-memory compiler: decide whether one record's data matches, without the database.

Used where records are already in hand (a worker's subscription, a record just written) and
as the reference the SQL compiler is tested against. It mirrors ``sql.py`` leaf by leaf; a
stored value of the wrong JSON type for its field (which the records service never writes)
simply does not match.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from zstorage.query.nodes import And, Domain, Leaf, Node, Not, Op, Or

_ORDER: dict[Op, Callable[[Any, Any], bool]] = {
    Op.EQ: operator.eq,
    Op.GT: operator.gt,
    Op.GTE: operator.ge,
    Op.LT: operator.lt,
    Op.LTE: operator.le,
}
ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(text: str) -> str:
    """Lower-case A-Z only: what SQLite's lower() does, so all three engines fold alike."""
    return text.translate(ASCII_LOWER)


def matches(node: Node, data: Mapping[str, Any], record_id: int | None) -> bool:
    if isinstance(node, And):
        return all(matches(child, data, record_id) for child in node.children)
    if isinstance(node, Or):
        return any(matches(child, data, record_id) for child in node.children)
    if isinstance(node, Not):
        return not matches(node.child, data, record_id)
    value = record_id if node.domain is Domain.RECORD_ID else data.get(node.key)
    if value is None:
        return False  # absent: only $exists can see it, and it says no
    return node.op is Op.EXISTS or _compare(node, value)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _compare(leaf: Leaf, value: Any) -> bool:
    op, wanted = leaf.op, leaf.value
    match leaf.domain:
        case Domain.TEXT:
            if not isinstance(value, str):
                return False
            assert isinstance(wanted, str)
            if op is Op.CONTAINS:
                return wanted in value
            if op is Op.ICONTAINS:
                return ascii_lower(wanted) in ascii_lower(value)
            if op is Op.STARTSWITH:
                return value.startswith(wanted)
            return _ORDER[op](value, wanted)
        case Domain.INTEGER | Domain.RECORD_ID:
            return _is_number(value) and _ORDER[op](value, wanted)
        case Domain.DECIMAL:
            number = _decimal(value)
            return number is not None and _ORDER[op](number, wanted)
        case Domain.BOOLEAN:
            return value is wanted
        case Domain.JSON:
            return _same_scalar(value, wanted)
        case Domain.SET:
            if not isinstance(value, list):
                return False
            if op is Op.CONTAINS:
                return wanted in value
            assert isinstance(wanted, tuple)
            # The same set of choices, in any order (duplicates do not count).
            return all(item in value for item in wanted) and all(
                isinstance(item, str) and item in wanted for item in value
            )
    raise AssertionError(leaf)


def _decimal(value: object) -> Decimal | None:
    """Decimals are stored as strings ("12.50"); numbers are read too, as the SQL cast does."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(repr(value) if isinstance(value, float) else value)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _same_scalar(value: object, wanted: object) -> bool:
    """JSON equality of scalars: same JSON type and same value (``true`` is not ``1``)."""
    if isinstance(wanted, bool) or isinstance(value, bool):
        return value is wanted
    if isinstance(wanted, str):
        return isinstance(value, str) and value == wanted
    return _is_number(value) and value == wanted
