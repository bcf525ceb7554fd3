"""The phone field type: a telephone number in E.164 form, "+" then 8 to 15 digits.

What is accepted. A number written internationally, with the "+" and the country code, in
the usual spellings: spaces, hyphens, dots, slashes and parentheses between the digits are
dropped ("+44 20 7946 0958", "+1 (212) 555-0123", "+49 30/1234-5678"), and so is a trunk
"(0)" written after the country code ("+44 (0)20 7946 0958"). A number without the "+"
("(020) 7946-0958", "0044 20…", "442079460958") is refused: making it canonical would mean
guessing its country or its international call prefix (00 in most countries, 011 in North
America), and a wrong guess stores someone else's number. Letters ("ext. 12") are refused.

Stored as "+442079460958", so that equal numbers are equal texts whatever the spelling; shown
grouped for reading, "+44 207 946 0958": the country code (told by the ITU's assignment,
which is prefix-free) then the rest in threes, a last group of four rather than one lone
digit. The grouping is generic, not each country's own habit.

The query language treats it as text, with operands normalised: ``$eq``/``$in`` take any
accepted spelling (and refuse a non-number); ``$contains``, ``$startswith`` and the ordering
operators drop the separators, so ``{"$contains": "7946 0958"}`` finds the number above.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from zstorage.fields.base import FieldKind, InvalidValue, register

CANONICAL = re.compile(r"\+[1-9][0-9]{7,14}")
_SEPARATORS = re.compile(r"[\s\-./()]")
_TRUNK = re.compile(r"\(0\)")
#: Country codes of one and of two digits (ITU-T E.164 assignment); the others have three.
_SHORT_CODES = {
    str(code)
    for code in (1, 7, 20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49,
                 51, 52, 53, 54, 55, 56, 57, 58, 60, 61, 62, 63, 64, 65, 66, 81, 82, 84, 86,
                 90, 91, 92, 93, 94, 95, 98)
}  # fmt: skip
MESSAGE = (
    "Enter the number in international form: + and the country code, then 8 to 15 digits "
    "in all, e.g. +44 20 7946 0958."
)


def strip_separators(text: str) -> str:
    return _SEPARATORS.sub("", _TRUNK.sub("", text))


def country_code(canonical: str) -> str:
    digits = canonical[1:]
    return next((digits[:n] for n in (1, 2) if digits[:n] in _SHORT_CODES), digits[:3])


def grouped(canonical: str) -> str:
    """``+442079460958`` → ``+44 207 946 0958``."""
    code = country_code(canonical)
    rest = canonical[1 + len(code) :]
    groups = [rest[i : i + 3] for i in range(0, len(rest), 3)]
    if len(groups) > 1 and len(groups[-1]) == 1:
        groups[-2:] = [groups[-2] + groups[-1]]
    return " ".join([f"+{code}", *groups])


@register
class PhoneKind(FieldKind):
    type = "phone"
    label = "Phone"
    order = 95
    searchable = True
    guards_formulas = True  # a canonical number starts with "+"
    widget = "tel"

    def coerce(self, value: Any, options: dict[str, Any]) -> str:
        if not isinstance(value, str):
            raise InvalidValue(MESSAGE)
        text = strip_separators(value.strip())
        if not CANONICAL.fullmatch(text):
            raise InvalidValue(MESSAGE)
        return text

    def display(self, value: Any) -> str:
        if isinstance(value, str) and CANONICAL.fullmatch(value):
            return grouped(value)
        return super().display(value)

    def input_value(self, value: Any) -> Any:
        return self.display(value)

    def input_attrs(self, options: Any) -> dict[str, str]:
        return {"autocomplete": "tel", "placeholder": "+44 20 7946 0958"}

    def query_operand(self, op: str, text: str, options: Mapping[str, Any]) -> str:
        if op == "$eq":
            return self.coerce(text, dict(options))
        return strip_separators(text)
