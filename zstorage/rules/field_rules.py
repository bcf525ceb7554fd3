"""Rules on one field's value: required, unique, min/max, min/max length, pattern, one of.

Min and max compare numbers as decimals and dates and datetimes as their canonical texts
(which order like time); their limit is stored in the field's canonical form.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from zstorage.errors import SchemaChangeRefused
from zstorage.fields import InvalidValue, kind_of
from zstorage.models import Field, Rule, RuleKind
from zstorage.rules.base import InvalidParams, RuleType, register


@register
class RequiredRule(RuleType):
    kind = RuleKind.REQUIRED
    checks_blank = True


@register
class UniqueRule(RuleType):
    kind = RuleKind.UNIQUE

    def unique_keys(self, rule: Rule) -> list[str]:
        return [rule.field.key] if rule.field is not None else []


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def comparable(value: Any, limit: Any) -> tuple[Any, Any]:
    """Numbers compare as decimals; dates and datetimes as canonical text (which orders)."""
    left, right = _number(value), _number(limit)
    if left is None or right is None:
        return str(value), str(limit)
    return left, right


class LimitRule(RuleType):
    inputs = ("value",)

    def check_params(
        self, field: Field | None, params: dict[str, Any], keys: set[str]
    ) -> dict[str, Any]:
        if "value" not in params:
            raise InvalidParams("Give the limit as params.value.")
        assert field is not None
        try:
            return {"value": kind_of(field.type).coerce(params["value"], field.options)}
        except InvalidValue as exc:
            raise InvalidParams(f"The limit does not suit the field: {exc}") from None

    def params_from(
        self, data: Mapping[str, Any], typed: Callable[[list[str]], list[Any]]
    ) -> dict[str, Any]:
        return {"value": data["value"]} if data.get("value") != "" else {}


@register
class MinRule(LimitRule):
    kind = RuleKind.MIN

    def holds(self, value: Any, params: Mapping[str, Any]) -> bool:
        left, right = comparable(value, params.get("value"))
        return bool(left >= right)


@register
class MaxRule(LimitRule):
    kind = RuleKind.MAX

    def holds(self, value: Any, params: Mapping[str, Any]) -> bool:
        left, right = comparable(value, params.get("value"))
        return bool(left <= right)


class LengthRule(RuleType):
    inputs = ("length",)

    def check_params(
        self, field: Field | None, params: dict[str, Any], keys: set[str]
    ) -> dict[str, Any]:
        assert field is not None
        if not kind_of(field.type).has_length:
            raise InvalidParams(f"A length rule does not apply to a {field.type} field.")
        if not isinstance(params.get("value"), int) or params["value"] < 0:
            raise InvalidParams("Give the length as a whole number in params.value.")
        return params

    def field_retyped(self, rule: Rule, field: Field) -> None:
        kind = kind_of(field.type)
        if not kind.has_length:
            raise SchemaChangeRefused(
                f"{kind.label} values have no length: delete the length rules of "
                f"{field.key!r} first."
            )

    def params_from(
        self, data: Mapping[str, Any], typed: Callable[[list[str]], list[Any]]
    ) -> dict[str, Any]:
        return {"value": data["length"]} if data.get("length") is not None else {}


@register
class MinLengthRule(LengthRule):
    kind = RuleKind.MIN_LENGTH

    def holds(self, value: Any, params: Mapping[str, Any]) -> bool:
        return len(value) >= int(params["value"])


@register
class MaxLengthRule(LengthRule):
    kind = RuleKind.MAX_LENGTH

    def holds(self, value: Any, params: Mapping[str, Any]) -> bool:
        return len(value) <= int(params["value"])


@register
class RegexRule(RuleType):
    kind = RuleKind.REGEX
    inputs = ("pattern",)

    def check_params(
        self, field: Field | None, params: dict[str, Any], keys: set[str]
    ) -> dict[str, Any]:
        try:
            re.compile(params.get("pattern", ""))
        except (re.error, TypeError) as exc:
            raise InvalidParams(f"Not a valid pattern: {exc}.") from None
        if not params.get("pattern"):
            raise InvalidParams("Give the pattern as params.pattern.")
        return params

    def holds(self, value: Any, params: Mapping[str, Any]) -> bool:
        return re.search(params["pattern"], str(value)) is not None

    def params_from(
        self, data: Mapping[str, Any], typed: Callable[[list[str]], list[Any]]
    ) -> dict[str, Any]:
        return {"pattern": data.get("pattern", "")}


@register
class ChoicesRule(RuleType):
    kind = RuleKind.CHOICES
    inputs = ("values",)

    def check_params(
        self, field: Field | None, params: dict[str, Any], keys: set[str]
    ) -> dict[str, Any]:
        values = params.get("values")
        if not isinstance(values, list) or not values:
            raise InvalidParams("List the allowed values in params.values.")
        return params

    def holds(self, value: Any, params: Mapping[str, Any]) -> bool:
        allowed = params["values"]
        return all(v in allowed for v in value) if isinstance(value, list) else value in allowed

    def params_from(
        self, data: Mapping[str, Any], typed: Callable[[list[str]], list[Any]]
    ) -> dict[str, Any]:
        text = data.get("values") or ""
        return {"values": typed([line.strip() for line in text.splitlines() if line.strip()])}
