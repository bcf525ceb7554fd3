"""Reading records: search, sort, cursor and page pagination, aggregation, children.

The API pages with opaque cursors (keyset pagination: stable while records are written);
the CRUD pages use page numbers. Both share ``records_for`` so a filter means the same
everywhere.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Avg, Case, Count, Max, Min, Q, QuerySet, Sum, TextField, Value, When
from django.db.models import IntegerField as IntegerOutput
from django.db.models.functions import Coalesce
from django.db.models.lookups import IsNull
from django.utils import timezone

from zstorage.columns import NUMBER, value_of
from zstorage.dialects import dialect
from zstorage.errors import ZStorageError
from zstorage.fields import kind_of
from zstorage.models import Field, Record, Table
from zstorage.query import compile_query
from zstorage.records import referencing_fields

AGGREGATES = {"count": Count, "sum": Sum, "avg": Avg, "min": Min, "max": Max}
MAX_PAGE_SIZE = 500


class BadRequest(ZStorageError):
    code = "invalid_request"


class InvalidPageSize(BadRequest):
    code = "invalid_page_size"


class InvalidCursor(BadRequest):
    """A cursor that is not one this API gave for this sort order: start again without it."""

    code = "invalid_cursor"


def fields_of(table: Table) -> dict[str, Field]:
    return {f.key: f for f in table.fields.all()}


def records_for(
    table: Table,
    *,
    query: Any = None,
    search: str = "",
    fields: dict[str, Field] | None = None,
) -> QuerySet[Record]:
    """The table's records matching a query-language filter and a full-text search."""
    fields = fields if fields is not None else fields_of(table)
    records = Record.objects.filter(table=table)
    if query:
        records = records.filter(compile_query(query, list(fields.values())).to_q())
    search = search.replace("\x00", " ")  # no text holds it (PostgreSQL cannot even take it)
    if search.strip():
        records = records.filter(_search(search, fields))
    return records


def _search(text: str, fields: dict[str, Field]) -> Q:
    keys = [key for key, f in fields.items() if kind_of(f.type).searchable]
    if not keys:
        return Q(pk__in=[])
    return dialect().search(text, keys)


# Sorting and keyset pagination ------------------------------------------------------------


@dataclass(frozen=True)
class SortKey:
    key: str
    descending: bool


def parse_sort(spec: str | list[str] | None, fields: dict[str, Field]) -> list[SortKey]:
    """``"-total,name"`` → keys; ``id`` and ``created_at``/``updated_at`` sort too."""
    parts = spec.split(",") if isinstance(spec, str) else list(spec or [])
    keys = []
    for part in (p.strip() for p in parts if p.strip()):
        key = part.lstrip("-")
        if key not in fields and key not in {"id", "created_at", "updated_at"}:
            raise BadRequest(f"Cannot sort by unknown field {key!r}.")
        keys.append(SortKey(key, part.startswith("-")))
    return keys


def sorted_records(
    records: QuerySet[Record], sort: list[SortKey], fields: dict[str, Field]
) -> tuple[QuerySet[Record], list[tuple[str, bool]]]:
    """Order records by ``sort`` then id, absent values last. Returns the queryset and the
    annotated (column, descending) terms the keyset cursor walks."""
    terms: list[tuple[str, bool]] = []
    annotations: dict[str, Any] = {}
    for i, item in enumerate(sort):
        if item.key == "id":
            continue
        if item.key in {"created_at", "updated_at"}:
            terms.append((item.key, item.descending))
            continue
        fld = fields[item.key]
        value = value_of(item.key, fld.type)
        numeric = kind_of(fld.type).numeric
        zero: Any = (
            Value(Decimal(0), output_field=NUMBER)
            if numeric
            else Value("", output_field=TextField())
        )
        annotations[f"_n{i}"] = Case(
            When(IsNull(value, True), then=1),
            default=0,
            output_field=IntegerOutput(),
        )
        annotations[f"_v{i}"] = Coalesce(
            value, zero, output_field=NUMBER if numeric else TextField()
        )
        terms += [(f"_n{i}", False), (f"_v{i}", item.descending)]
    id_descending = any(s.key == "id" and s.descending for s in sort)
    terms.append(("id", id_descending))
    records = records.annotate(**annotations).order_by(
        *(f"-{name}" if desc else name for name, desc in terms)
    )
    return records, terms


def encode_cursor(record: Record, terms: list[tuple[str, bool]]) -> str:
    values = [getattr(record, name) for name, _ in terms]
    raw = json.dumps([str(v) if isinstance(v, Decimal) else v for v in values], default=str)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def after_cursor(
    records: QuerySet[Record], cursor: str, terms: list[tuple[str, bool]]
) -> QuerySet[Record]:
    """Records strictly after the cursor's position in the ``terms`` order."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        raise InvalidCursor("The cursor is not valid; start again without it.") from None
    if not isinstance(values, list) or len(values) != len(terms):
        raise InvalidCursor("The cursor does not match this sort order; start again without it.")
    condition = Q()
    equal_so_far = Q()
    for (name, desc), raw in zip(terms, values, strict=True):
        value = _cursor_value(records, name, raw)
        condition |= equal_so_far & Q(**{f"{name}__{'lt' if desc else 'gt'}": value})
        equal_so_far &= Q(**{name: value})
    return records.filter(condition)


#: Beyond what the columns a cursor walks can hold: ids and ``NUMBER`` (40 digits, 12 places).
_MAX_ID = 2**63
_MAX_NUMBER = Decimal(10) ** 28


def _cursor_value(records: QuerySet[Record], name: str, raw: Any) -> Any:
    """``raw`` as a value of the column ``name``, or ``InvalidCursor``: a cursor comes from
    the client, so nothing in it reaches the query without passing its column's type."""
    annotation = records.query.annotations.get(name)
    column = annotation.output_field if annotation is not None else Record._meta.get_field(name)
    try:
        if raw is None or isinstance(raw, bool | list | dict):
            raise TypeError
        if isinstance(column, IntegerOutput) and not isinstance(raw, int):
            raise TypeError  # ids and the absent-last flags: 1.5 or "7" is no cursor of ours
        value = column.to_python(raw)  # type: ignore[union-attr]  # a concrete column
    except (ValidationError, TypeError, ValueError, ArithmeticError):
        value = None
    if value is None or not _storable(value):
        raise InvalidCursor("The cursor is not valid; start again without it.")
    return value


def _storable(value: Any) -> bool:
    """Whether every database can compare the column with ``value`` (no overflow, no NUL)."""
    if isinstance(value, int):
        return -_MAX_ID <= value < _MAX_ID
    if isinstance(value, Decimal):
        return value.is_finite() and abs(value) < _MAX_NUMBER
    if isinstance(value, str):
        return "\x00" not in value
    if isinstance(value, dt.datetime):
        return timezone.is_aware(value)
    return True


@dataclass
class CursorPage:
    records: list[Record]
    next_cursor: str | None
    total: int


def page_size(raw: Any, default: int = 50) -> int:
    """A ``page_size`` as a client sent it (text in a query string, or a number)."""
    if raw is None or raw == "":
        return default
    text = str(raw)
    if isinstance(raw, bool) or not (text.isdecimal() and len(text) <= 9):
        raise InvalidPageSize(f"The page size must be a whole number from 1 to {MAX_PAGE_SIZE}.")
    return int(text)


def cursor_page(
    records: QuerySet[Record],
    sort: list[SortKey],
    fields: dict[str, Field],
    *,
    cursor: str | None = None,
    size: int = 50,
) -> CursorPage:
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise InvalidPageSize(f"The page size must be a whole number from 1 to {MAX_PAGE_SIZE}.")
    total = records.count()
    ordered, terms = sorted_records(records, sort, fields)
    if cursor:
        ordered = after_cursor(ordered, cursor, terms)
    page = list(ordered[: size + 1])
    more = len(page) > size
    page = page[:size]
    return CursorPage(page, encode_cursor(page[-1], terms) if more and page else None, total)


# Aggregation and children -------------------------------------------------------------------


def _plain(value: Any, field: Field | None) -> Any:
    if field is not None:
        return kind_of(field.type).from_aggregate(value)
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return value


def aggregate(
    records: QuerySet[Record],
    fields: dict[str, Field],
    *,
    function: str,
    field: str | None = None,
    group_by: str | None = None,
) -> list[dict[str, Any]]:
    """``[{"group": …, "value": …}]``; without ``group_by``, one row with group None."""
    if function not in AGGREGATES:
        raise BadRequest(f"Unknown aggregate {function!r}; use one of {', '.join(AGGREGATES)}.")
    if function != "count" and field is None:
        raise BadRequest(f"{function} needs a field.")
    for key in (field, group_by):
        if key is not None and key not in fields:
            raise BadRequest(f"Unknown field {key!r}.")
    target = fields[field] if field else None
    if function in {"sum", "avg"} and target is not None and not kind_of(target.type).numeric:
        raise BadRequest(f"{function} needs a number field; {field!r} is {target.type}.")
    if target is not None:
        measure: Any = AGGREGATES[function](value_of(target.key, target.type))
    else:
        measure = Count("id")
    if group_by is None:
        return [{"group": None, "value": _plain(records.aggregate(value=measure)["value"], target)}]
    group_field = fields[group_by]
    rows = (
        records.annotate(_group=value_of(group_by, group_field.type))
        .values("_group")
        .annotate(value=measure)
        .order_by("_group")
    )
    return [
        {"group": _plain(r["_group"], group_field), "value": _plain(r["value"], target)}
        for r in rows
    ]


def children(table: Table, record_id: int) -> list[tuple[Field, QuerySet[Record]]]:
    """For each reference field pointing at ``table``, the records that reference the record."""
    found = []
    for fld in referencing_fields(table):
        found.append(
            (fld, Record.objects.filter(table=fld.table, **{f"data__{fld.key}": record_id}))
        )
    return found
