"""Filtering the trail: one reading of the filters for the back-office page, its CSV export
and the REST API, so each shows the same rows for the same query string.

Filters (query-string names): ``action`` (a whole code, "queue.purge", or an object's prefix,
"queue" for every "queue.*"), ``actor`` (a username, as recorded, any case), ``object_type``
("queues.queue"), ``object_id``, ``via`` (web, api, command, system), ``from`` and ``to`` (an
ISO 8601 date or date-time; a date alone means its whole day, in the server's time zone).
A value that cannot be read is an error keyed by its name, not ignored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from audit.models import AuditEvent, Via

NAMES = ("action", "actor", "object_type", "object_id", "via", "from", "to")
#: Longest value a text filter takes (the model's longest column).
MAX_LENGTH = 300
TIME_FORMAT = "Use an ISO 8601 date or date-time, e.g. 2026-01-31 or 2026-01-31T12:00:00Z."


@dataclass
class AuditFilters:
    values: dict[str, str]
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def read(cls, params: Mapping[str, Any]) -> AuditFilters:
        values = {name: str(params.get(name) or "").strip() for name in NAMES}
        found = cls(values)
        for name, text in values.items():
            if len(text) > MAX_LENGTH or "\x00" in text:
                found.errors[name] = [f"At most {MAX_LENGTH} characters, without NUL."]
        if values["via"] and values["via"] not in Via.values:
            found.errors["via"] = [f"Choose one of {', '.join(Via.values)}."]
        found.start = found._moment("from", end=False)
        found.end = found._moment("to", end=True)
        return found

    def _moment(self, name: str, *, end: bool) -> dt.datetime | None:
        text = self.values[name]
        if not text or name in self.errors:
            return None
        try:  # a date first: parse_datetime reads "2026-01-31" as its midnight
            day = parse_date(text) if len(text) == len("2026-01-31") else None
            moment = None if day is not None else parse_datetime(text)
        except ValueError:  # well formed, but no such day or time (2026-02-30)
            moment = day = None
        if moment is None and day is None:
            self.errors[name] = [TIME_FORMAT]
            return None
        if moment is None:
            assert day is not None
            moment = dt.datetime.combine(day + dt.timedelta(days=1 if end else 0), dt.time())
            if end:  # "to" a day: up to the end of that day
                moment -= dt.timedelta(microseconds=1)
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment)
        return moment

    @property
    def active(self) -> bool:
        return any(self.values.values())

    def apply(self, events: QuerySet[AuditEvent] | None = None) -> QuerySet[AuditEvent]:
        """The events these filters keep (call only when ``errors`` is empty)."""
        found = AuditEvent.objects.all() if events is None else events
        action = self.values["action"]
        if action:
            found = (
                found.filter(action=action)
                if "." in action
                else found.filter(action__startswith=f"{action}.")
            )
        if self.values["actor"]:
            found = found.filter(actor_name__iexact=self.values["actor"])
        if self.values["object_type"]:
            found = found.filter(object_type=self.values["object_type"].lower())
        if self.values["object_id"]:
            found = found.filter(object_id=self.values["object_id"])
        if self.values["via"]:
            found = found.filter(via=self.values["via"])
        if self.start is not None:
            found = found.filter(at__gte=self.start)
        if self.end is not None:
            found = found.filter(at__lte=self.end)
        return found

    def query_string(self) -> str:
        """The filters as a query string (for the pager and the export link)."""
        return urlencode({k: v for k, v in self.values.items() if v})
