"""Which records a replay sends: a query-language filter, a list of ids, a "changed between"
window — any of them, all applying together — plus the link's own filter, over the records
that existed when the replay started (id at most ``last_id``).

``pages`` walks them by keyset (``id > cursor ORDER BY id LIMIT n``, on the ``(table, id)``
index), so a replay of a million records holds one page in memory at a time and each page
costs one indexed query however far it is into the table. A list of ids is walked the same
way: the next ``n`` ids after the cursor, looked up with ``id IN (…)``.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from queues.models import QueueLink
from queues.replay.errors import InvalidReplay
from zstorage.errors import QueryError
from zstorage.models import Record
from zstorage.query import compile_query
from zstorage.reads import fields_of

KEYS = ("filter", "ids", "changed_from", "changed_to")
#: The most ids one replay may list (a longer list is a filter's job).
MAX_IDS = 10_000
#: The largest whole number a record id can be (a bigint).
MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class Selection:
    filter: dict[str, Any] | None = None
    ids: tuple[int, ...] | None = None
    changed_from: dt.datetime | None = None
    changed_to: dt.datetime | None = None

    @classmethod
    def parse(cls, raw: object) -> Selection:
        """A selection from its JSON form; raises ``InvalidReplay`` naming each bad key."""
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise InvalidReplay(
                {"selection": ["Give an object with filter, ids, changed_from or changed_to."]}
            )
        errors: dict[str, list[str]] = {}
        for key in raw:
            if key not in KEYS:
                errors[str(key)] = [f"Not a selection key (use {', '.join(KEYS)})."]
        query = raw.get("filter")
        if query in (None, {}):
            query = None
        elif not isinstance(query, dict):
            errors["filter"] = ["A query-language filter is a JSON object."]
        ids = _ids(raw.get("ids"), errors)
        start = _time(raw.get("changed_from"), "changed_from", errors, end=False)
        end = _time(raw.get("changed_to"), "changed_to", errors, end=True)
        if start is not None and end is not None and end <= start:
            errors.setdefault("changed_to", []).append("It must come after changed_from.")
        if errors:
            raise InvalidReplay(errors)
        return cls(query, ids, start, end)

    def as_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if self.filter is not None:
            found["filter"] = self.filter
        if self.ids is not None:
            found["ids"] = list(self.ids)
        if self.changed_from is not None:
            found["changed_from"] = self.changed_from.isoformat()
        if self.changed_to is not None:
            found["changed_to"] = self.changed_to.isoformat()
        return found

    def condition(self, link: QueueLink) -> Q:
        """The selection and the link's filter as one condition on the link table's records;
        raises ``InvalidReplay`` for a filter the table's fields refuse."""
        fields = list(fields_of(link.table).values())
        found = Q(table_id=link.table_id)
        for name, query in (("filter", self.filter), ("link", link.filter or None)):
            if query is None:
                continue
            try:
                found &= compile_query(query, fields).to_q()
            except QueryError as error:
                where = "filter" if name == "filter" else "link"
                raise InvalidReplay({where: [f"{error.path}: {error.detail}"]}) from error
        if self.changed_from is not None:
            found &= Q(updated_at__gte=self.changed_from)
        if self.changed_to is not None:
            found &= Q(updated_at__lt=self.changed_to)
        return found

    def records(self, link: QueueLink, last_id: int) -> QuerySet[Record]:
        """Every selected record (for the preview's count)."""
        records = Record.objects.filter(self.condition(link), id__lte=last_id)
        return records.filter(id__in=self.ids) if self.ids is not None else records

    def page(
        self, condition: Q, cursor: int, last_id: int, size: int
    ) -> tuple[QuerySet[Record], int | None]:
        """The selected records after ``cursor`` in id order (the caller takes ``size``), and
        for a list of ids the last id this page looks at (None: no id left after it)."""
        records = Record.objects.filter(condition, id__gt=cursor, id__lte=last_id).order_by("id")
        if self.ids is None:
            return records, None
        start = bisect.bisect_right(self.ids, cursor)
        ids = [i for i in self.ids[start : start + size] if i <= last_id]
        return records.filter(id__in=ids), (ids[-1] if ids else None)


def newest_id(link: QueueLink) -> int:
    """The id a replay started now stops at: the table's newest record's."""
    last = (
        Record.objects.filter(table_id=link.table_id)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
    )
    return int(last or 0)


def max_records() -> int:
    return int(settings.QUAYMASTER_REPLAY_MAX_RECORDS)


def _ids(raw: object, errors: dict[str, list[str]]) -> tuple[int, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(
        isinstance(item, int) and not isinstance(item, bool) and 0 < item <= MAX_ID for item in raw
    ):
        errors["ids"] = ["A list of record ids (whole numbers from 1 up)."]
        return None
    if not raw:
        errors["ids"] = ["Name at least one record id, or leave ids out."]
        return None
    if len(raw) > MAX_IDS:
        errors["ids"] = [f"At most {MAX_IDS:,} ids; select more with a filter."]
        return None
    return tuple(sorted(set(raw)))


def _time(raw: object, key: str, errors: dict[str, list[str]], *, end: bool) -> dt.datetime | None:
    """An ISO 8601 time (a date alone: that day's start, or for ``changed_to`` the next day's,
    so that a date range takes in its last day); without an offset, UTC."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        errors[key] = ["An ISO 8601 time, e.g. 2026-11-23T14:00:00Z."]
        return None
    text = raw.strip()
    try:
        moment = parse_datetime(text)
        day = None if moment is not None else parse_date(text)
    except ValueError:
        moment = day = None
    if moment is None and day is not None:
        try:
            moment = dt.datetime.combine(day, dt.time()) + dt.timedelta(days=1 if end else 0)
        except OverflowError:
            moment = None
    if moment is None:
        errors[key] = ["An ISO 8601 time, e.g. 2026-11-23T14:00:00Z."]
        return None
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=dt.UTC)
    return moment
