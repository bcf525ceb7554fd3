"""Date and datetime field types.

Dates are stored as "YYYY-MM-DD"; datetimes as UTC "YYYY-MM-DDTHH:MM:SS.ffffffZ" (fixed
width, so text order is time order and the query language compares the texts). People see
and type datetimes in the site's time zone, without an offset; that conversion lives here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from zstorage.fields.base import (
    COMPARE,
    SUBSTRING,
    FieldKind,
    FilterSpec,
    InvalidValue,
    register,
    text_value,
)
from zstorage.models import FieldType


def parse_moment(text: str) -> dt.datetime | None:
    """An ISO 8601 text as an aware UTC datetime (no offset: UTC); None if it is not one."""
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


def stored_moment(value: Any) -> dt.datetime | None:
    """A stored datetime in the site's time zone; None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = parse_datetime(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return timezone.localtime(moment) if moment and moment.tzinfo else moment


def local_moment(text: str) -> dt.datetime | None:
    """A ``datetime-local`` input's text as an aware datetime in the site's time zone."""
    try:
        moment = parse_datetime(text.strip())
    except ValueError:
        return None
    if moment is None:
        return None
    return moment if moment.tzinfo else timezone.make_aware(moment)


class MomentLike(FieldKind):
    operators = COMPARE

    def query_operand(self, op: str, text: str, options: Mapping[str, Any]) -> str:
        """Normalised as stored, so that text order is time order."""
        if op in SUBSTRING:
            return text
        return str(self.coerce(text, dict(options)))


@register
class DateKind(MomentLike):
    type = FieldType.DATE
    label = FieldType.DATE.label
    order = 60
    widget = "date"
    filter = FilterSpec("range", "date")

    def coerce(self, value: Any, options: dict[str, Any]) -> str:
        if isinstance(value, dt.datetime):
            aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
            return aware.astimezone(dt.UTC).date().isoformat()
        if isinstance(value, dt.date):
            return value.isoformat()
        text = text_value(value, "a date (YYYY-MM-DD)").strip()
        try:
            parsed = parse_date(text)
        except ValueError:
            parsed = None
        if parsed is None:
            # A datetime converts to its date (type change from datetime).
            moment = parse_moment(text)
            if moment is None:
                raise InvalidValue("Enter a date as YYYY-MM-DD.")
            parsed = moment.date()
        return parsed.isoformat()


@register
class DateTimeKind(MomentLike):
    type = FieldType.DATETIME
    label = FieldType.DATETIME.label
    order = 70
    widget = "datetime-local"
    filter = FilterSpec("range", "datetime-local")

    def coerce(self, value: Any, options: dict[str, Any]) -> str:
        if isinstance(value, dt.datetime):
            return canonical_datetime(value if value.tzinfo else value.replace(tzinfo=dt.UTC))
        text = text_value(value, "a date and time (ISO 8601)").strip()
        moment = parse_moment(text)
        if moment is None:
            day = parse_date(text) if len(text) == 10 else None
            if day is None:
                raise InvalidValue("Enter a date and time as ISO 8601, e.g. 2024-05-01T13:30:00Z.")
            moment = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        return canonical_datetime(moment)

    def display(self, value: Any) -> str:
        moment = stored_moment(value)
        if moment is None:
            return super().display(value)
        return moment.strftime("%Y-%m-%d %H:%M" if not moment.second else "%Y-%m-%d %H:%M:%S")

    def input_value(self, value: Any) -> Any:
        if value is None:
            return ""
        moment = stored_moment(value)
        return moment.strftime("%Y-%m-%dT%H:%M:%S") if moment else str(value)

    def from_input(self, value: Any) -> Any:
        text = str(value or "").strip()
        return (local_moment(text) or text) if text else None

    def input_attrs(self, options: Any) -> dict[str, str]:
        return {"step": "1"}

    def filter_bound(self, text: str) -> Any:
        moment = local_moment(text)
        return moment.isoformat() if moment else text
