"""Text-like field types: text, long text, email and URL.

Values are JSON strings compared code point by code point; they have a length, take part in
the full-text search, and a CSV export quotes those a spreadsheet would run as a formula.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import EmailValidator, URLValidator

from zstorage.fields.base import FieldKind, InvalidValue, register, text_value
from zstorage.models import FieldType


def validated(validator: Callable[[str], None], text: str, message: str) -> str:
    try:
        validator(text)
    except DjangoValidationError:
        raise InvalidValue(message) from None
    return text


class TextLike(FieldKind):
    """What every text-like type shares (the base class's query and filter defaults)."""

    has_length = True
    searchable = True
    guards_formulas = True


@register
class TextKind(TextLike):
    type = FieldType.TEXT
    label = FieldType.TEXT.label
    order = 10
    labels_records = True
    max_length: ClassVar[int] = 1000

    def coerce(self, value: Any, options: dict[str, Any]) -> str:
        text = text_value(value)
        if len(text) > self.max_length:
            raise InvalidValue(f"Keep this under {self.max_length} characters.")
        return text

    def from_input(self, value: Any) -> Any:
        text = str(value or "")
        return None if text.strip() == "" else text  # kept as typed, spaces included


@register
class LongTextKind(TextKind):
    type = FieldType.LONG_TEXT
    label = FieldType.LONG_TEXT.label
    order = 20
    labels_records = False
    widget = "textarea"
    shown_as = "lines"
    max_length = 100_000


@register
class EmailKind(TextLike):
    type = FieldType.EMAIL
    label = FieldType.EMAIL.label
    order = 80
    labels_records = True
    widget = "email"

    def coerce(self, value: Any, options: dict[str, Any]) -> str:
        text = text_value(value, "an email address").strip()
        local, _, domain = text.rpartition("@")
        text = f"{local}@{domain.lower()}" if local else text
        return validated(EmailValidator(), text, "Enter a valid email address.")

    def input_attrs(self, options: Any) -> dict[str, str]:
        return {"autocomplete": "email"}


@register
class UrlKind(TextLike):
    type = FieldType.URL
    label = FieldType.URL.label
    order = 90
    labels_records = True
    widget = "url"
    shown_as = "link"

    def coerce(self, value: Any, options: dict[str, Any]) -> str:
        text = text_value(value, "a URL").strip()
        return validated(URLValidator(), text, "Enter a valid URL (http:// or https://).")
