"""The registry of field types. Each type owns how a value is checked and made canonical
(the form stored in ``Record.data``), how it converts from another type, and how it is shown.

Canonical forms are chosen so that the query language can compare stored values directly:
decimals are strings in plain notation ("12.50", compared numerically by a cast), dates are
"YYYY-MM-DD", datetimes are UTC "YYYY-MM-DDTHH:MM:SS.ffffffZ" (fixed width, so text order is
time order), references are the referenced record's integer id.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import EmailValidator, URLValidator
from django.utils.dateparse import parse_date, parse_datetime

from zstorage.models import FieldType


class InvalidValue(ValueError):
    """A value that a field type cannot accept; the message is shown to the user."""


class FieldKind:
    """Base of every field type. Subclasses set ``type`` and override ``coerce``."""

    type: ClassVar[FieldType]
    #: HTML input type the CRUD pages use for this field.
    input_type: ClassVar[str] = "text"
    #: Whether the query language compares this type numerically.
    numeric: ClassVar[bool] = False

    def coerce(self, value: Any, options: dict[str, Any]) -> Any:
        raise NotImplementedError

    def convert(self, value: Any, options: dict[str, Any]) -> Any:
        """Convert a value stored under another type; by default through its text form."""
        if isinstance(value, (dict, list)):
            return self.coerce(json.dumps(value), options)
        if isinstance(value, bool):
            return self.coerce("true" if value else "false", options)
        return self.coerce(str(value), options)

    def display(self, value: Any) -> str:
        return "" if value is None else str(value)

    def check_options(self, options: dict[str, Any]) -> None:
        """Raise InvalidValue when the field's options do not suit the type."""


_REGISTRY: dict[str, FieldKind] = {}


def register(cls: type[FieldKind]) -> type[FieldKind]:
    _REGISTRY[cls.type.value] = cls()
    return cls


def kind_of(field_type: str) -> FieldKind:
    try:
        return _REGISTRY[field_type]
    except KeyError:
        raise InvalidValue(f"Unknown field type {field_type!r}.") from None


def registered_types() -> list[str]:
    return list(_REGISTRY)


def _text(value: Any, what: str = "text") -> str:
    if isinstance(value, str):
        return value
    raise InvalidValue(f"Enter {what}.")


@register
class TextKind(FieldKind):
    type = FieldType.TEXT
    max_length: ClassVar[int] = 1000

    def coerce(self, value: Any, options: dict[str, Any]) -> str:
        text = _text(value)
        if len(text) > self.max_length:
            raise InvalidValue(f"Keep this under {self.max_length} characters.")
        return text


@register
class LongTextKind(TextKind):
    type = FieldType.LONG_TEXT
    input_type = "textarea"
    max_length = 100_000


_WHOLE_DECIMAL = re.compile(r"[+-]?[0-9]+\.0*")


@register
class IntegerKind(FieldKind):
    type = FieldType.INTEGER
    input_type = "number"
    numeric = True

    def coerce(self, value: Any, options: dict[str, Any]) -> int:
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


@register
class DecimalKind(FieldKind):
    type = FieldType.DECIMAL
    input_type = "number"
    numeric = True

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


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


@register
class BooleanKind(FieldKind):
    type = FieldType.BOOLEAN
    input_type = "checkbox"

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


@register
class DateKind(FieldKind):
    type = FieldType.DATE
    input_type = "date"

    def coerce(self, value: Any, options: dict[str, Any]) -> str:
        if isinstance(value, dt.datetime):
            aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
            return aware.astimezone(dt.UTC).date().isoformat()
        if isinstance(value, dt.date):
            return value.isoformat()
        text = _text(value, "a date (YYYY-MM-DD)").strip()
        try:
            parsed = parse_date(text)
        except ValueError:
            parsed = None
        if parsed is None:
            # A datetime converts to its date (type change from datetime).
            moment = _parse_moment(text)
            if moment is None:
                raise InvalidValue("Enter a date as YYYY-MM-DD.")
            parsed = moment.date()
        return parsed.isoformat()


def _parse_moment(text: str) -> dt.datetime | None:
    try:
        parsed = parse_datetime(text)
    except ValueError:
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def canonical_datetime(moment: dt.datetime) -> str:
    # strftime's %Y does not pad years before 1000 on every platform; the width must be fixed.
    moment = moment.astimezone(dt.UTC)
    return f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S.%f}Z"


@register
class DateTimeKind(FieldKind):
    type = FieldType.DATETIME
    input_type = "datetime-local"

    def coerce(self, value: Any, options: dict[str, Any]) -> str:
        if isinstance(value, dt.datetime):
            return canonical_datetime(value if value.tzinfo else value.replace(tzinfo=dt.UTC))
        text = _text(value, "a date and time (ISO 8601)").strip()
        moment = _parse_moment(text)
        if moment is None:
            day = parse_date(text) if len(text) == 10 else None
            if day is None:
                raise InvalidValue("Enter a date and time as ISO 8601, e.g. 2024-05-01T13:30:00Z.")
            moment = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        return canonical_datetime(moment)


def _validated(validator: Callable[[str], None], text: str, message: str) -> str:
    try:
        validator(text)
    except DjangoValidationError:
        raise InvalidValue(message) from None
    return text


@register
class EmailKind(FieldKind):
    type = FieldType.EMAIL
    input_type = "email"

    def coerce(self, value: Any, options: dict[str, Any]) -> str:
        text = _text(value, "an email address").strip()
        local, _, domain = text.rpartition("@")
        text = f"{local}@{domain.lower()}" if local else text
        return _validated(EmailValidator(), text, "Enter a valid email address.")


@register
class UrlKind(FieldKind):
    type = FieldType.URL
    input_type = "url"

    def coerce(self, value: Any, options: dict[str, Any]) -> str:
        text = _text(value, "a URL").strip()
        return _validated(URLValidator(), text, "Enter a valid URL (http:// or https://).")


def _choices(options: dict[str, Any]) -> list[str]:
    choices = options.get("choices")
    if not isinstance(choices, list) or not choices or not all(isinstance(c, str) for c in choices):
        raise InvalidValue("List the choices as a non-empty list of texts.")
    if len(set(choices)) != len(choices):
        raise InvalidValue("Each choice may appear once.")
    return choices


@register
class ChoiceKind(FieldKind):
    type = FieldType.CHOICE
    input_type = "select"

    def coerce(self, value: Any, options: dict[str, Any]) -> str:
        choices = _choices(options)
        if not isinstance(value, str) or value not in choices:
            raise InvalidValue(f"Choose one of: {', '.join(choices)}.")
        return value

    def check_options(self, options: dict[str, Any]) -> None:
        _choices(options)


@register
class MultiChoiceKind(FieldKind):
    type = FieldType.MULTI_CHOICE
    input_type = "select-multiple"

    def coerce(self, value: Any, options: dict[str, Any]) -> list[str]:
        choices = _choices(options)
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidValue("Enter a list of choices.")
        unknown = [v for v in value if v not in choices]
        if unknown:
            raise InvalidValue(
                f"Not a choice: {', '.join(unknown)}. Choose from: {', '.join(choices)}."
            )
        chosen = set(value)
        return [c for c in choices if c in chosen]

    def convert(self, value: Any, options: dict[str, Any]) -> list[str]:
        return self.coerce(value if isinstance(value, list) else str(value), options)

    def check_options(self, options: dict[str, Any]) -> None:
        _choices(options)

    def display(self, value: Any) -> str:
        return ", ".join(value or [])


@register
class JsonKind(FieldKind):
    type = FieldType.JSON
    input_type = "textarea"

    def coerce(self, value: Any, options: dict[str, Any]) -> Any:
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise InvalidValue("Enter a JSON value.") from None
        return value

    def convert(self, value: Any, options: dict[str, Any]) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def display(self, value: Any) -> str:
        return "" if value is None else json.dumps(value, ensure_ascii=False)


@register
class ReferenceKind(FieldKind):
    """The id of a record of the table named in ``options["table"]`` (a slug). That the record
    exists is checked by the records service, which can see the database."""

    type = FieldType.REFERENCE
    input_type = "select"
    numeric = True

    def coerce(self, value: Any, options: dict[str, Any]) -> int:
        if isinstance(value, dict) and "id" in value:
            value = value["id"]
        if isinstance(value, bool):
            raise InvalidValue("Enter the id of a record.")
        if isinstance(value, int) and value > 0:
            return value
        if isinstance(value, str) and value.strip().isdecimal() and int(value) > 0:
            return int(value)
        raise InvalidValue("Enter the id of a record.")

    def check_options(self, options: dict[str, Any]) -> None:
        if not isinstance(options.get("table"), str) or not options["table"]:
            raise InvalidValue("Name the referenced table's slug in options.table.")
