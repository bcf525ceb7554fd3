"""Number and boolean field types: integer, decimal, boolean.

Integers are JSON integers; decimals are plain-notation strings ("12.50") so that no digit is
lost to a float, compared numerically by a cast; booleans are JSON true/false.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from zstorage.fields.base import (
    COMPARE,
    EQUALITY,
    Domain,
    FieldKind,
    FilterSpec,
    InvalidValue,
    register,
)
from zstorage.models import FieldType

_WHOLE_DECIMAL = re.compile(r"[+-]?[0-9]+\.0*")


class NumberLike(FieldKind):
    operators = COMPARE
    numeric = True
    summable = True
    widget = "number"
    filter = FilterSpec("range", "number")


@register
class IntegerKind(NumberLike):
    type = FieldType.INTEGER
    label = FieldType.INTEGER.label
    order = 30
    domain = Domain.INTEGER

    def coerce(self, value: Any, options: dict[str, Any]) -> int:
        number = self._whole(value)
        if not -(2**63) <= number < 2**63:
            raise InvalidValue("Enter a whole number of at most 64 bits (about 19 digits).")
        return number

    @staticmethod
    def _whole(value: Any) -> int:
        if isinstance(value, bool):
            raise InvalidValue("Enter a whole number.")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            text = value.strip()
            # "12.00" (a decimal's canonical form) is a whole number too.
            if _WHOLE_DECIMAL.fullmatch(text):
                text = text.partition(".")[0]
            try:
                return int(text)
            except ValueError:
                pass
        raise InvalidValue("Enter a whole number.")

    def from_aggregate(self, value: Any) -> Any:
        if isinstance(value, Decimal) and value == value.to_integral():
            return int(value)
        return super().from_aggregate(value)

    def input_attrs(self, options: Any) -> dict[str, str]:
        return {"step": "1"}

    def filter_bound(self, text: str) -> Any:
        try:
            return int(text)
        except ValueError:
            return text  # the query compiler says what is wrong


@register
class DecimalKind(NumberLike):
    type = FieldType.DECIMAL
    label = FieldType.DECIMAL.label
    order = 40
    domain = Domain.DECIMAL
    option_inputs = ("places",)

    def coerce(self, value: Any, options: dict[str, Any]) -> str:
        if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
            raise InvalidValue("Enter a number.")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise InvalidValue("Enter a number.") from None
        if not number.is_finite():
            raise InvalidValue("Enter a finite number.")
        places = options.get("places")
        if places is not None:
            try:
                number = number.quantize(Decimal(1).scaleb(-int(places)))
            except InvalidOperation:
                raise InvalidValue("Enter a number with at most 28 digits.") from None
        return format(number, "f")

    def check_options(self, options: dict[str, Any]) -> None:
        places = options.get("places")
        if places is not None and not (
            isinstance(places, int) and not isinstance(places, bool) and 0 <= places <= 12
        ):
            raise InvalidValue("Decimal places must be a whole number from 0 to 12.")

    def input_attrs(self, options: Any) -> dict[str, str]:
        places = options.get("places")
        return {"step": f"{10**-places:.{places}f}" if places else "1" if places == 0 else "any"}


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


@register
class BooleanKind(FieldKind):
    type = FieldType.BOOLEAN
    label = FieldType.BOOLEAN.label
    order = 50
    domain = Domain.BOOLEAN
    operators = EQUALITY
    widget = "checkbox"
    filter = FilterSpec("boolean", "select")

    def coerce(self, value: Any, options: dict[str, Any]) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise InvalidValue("Enter true or false.")

    def display(self, value: Any) -> str:
        return "" if value is None else ("Yes" if value else "No")

    def input_value(self, value: Any) -> Any:
        return bool(value)

    def submitted(self, post: Any, name: str) -> Any:
        return name in post

    def from_input(self, value: Any) -> Any:
        return value if value not in ([], None) else None

    def csv_format(self, value: Any) -> str:
        return "" if value is None else ("true" if value else "false")
