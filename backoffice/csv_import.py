"""A CSV import: reading the file, planning what each row will do, and doing it.

Two modes. **Create** makes every row a new record (an ``id`` column, as in an export, is
ignored). **Update by id** updates the record a row's ``id`` names and creates a record for a
row without one. An update row is checked against the record as stored: it must exist in this
table, the user must be allowed to change the table's records, and when the file has a
``version`` column (an export writes one) it must still be the record's version, as the
Record API's optimistic concurrency asks. A row whose values, cleaned as the records service
cleans them, equal the stored record's is *unchanged* and writes nothing.

The plan (``Batch``) is what the preview shows and what the confirmation applies, all or
nothing in one transaction: first each named record is read locked and its version compared
with the one planned (a record changed or deleted since is a row error), then the updates go
through ``records.bulk_update`` with that version expected, then the creates through
``records.bulk_create``. The preview runs the same function and rolls it back, so the errors it
lists per row are the ones the confirmation would meet.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from django.db import transaction

from audit import trail
from backoffice.references import is_reference, label_column
from zstorage import records
from zstorage.errors import BulkInvalid, ZStorageError
from zstorage.fields import InvalidValue, kind_of
from zstorage.models import Field, Record, Table
from zstorage.permissions import Action, can
from zstorage.schema_cache import schema_for
from zstorage.validation import ALL, clean_data

MAX_ROWS = 5000
ID, VERSION = "id", "version"
#: Columns an export writes that the database sets; an update reads ``id`` and ``version``.
SYSTEM_COLUMNS = (ID, VERSION, "created_at", "updated_at")
#: The largest id or version a database column holds (64-bit signed).
BIGGEST = 2**63 - 1
#: Marks the id and version columns among field keys (which cannot hold it).
_MARK = "$"
#: Record ids read per query (SQLite's older versions take at most 999 parameters).
CHUNK = 900

Errors = dict[str, list[str]]


class Mode(StrEnum):
    CREATE = "create"
    UPDATE = "update"


#: The upload form's choice: (value, label, help).
MODES = [
    (Mode.CREATE, "Create new records", "Every row becomes a new record; an id column is ignored."),
    (
        Mode.UPDATE,
        "Update by id",
        "A row with an id updates that record, which must still be at the version in the file "
        "when the file has a version column (as an export does); a row without an id becomes "
        "a new record. Rows equal to their record change nothing.",
    ),
]


class Plan(StrEnum):
    """What the import does with one row."""

    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"


@dataclass
class Row:
    """One row of the file: its number (counting rows with any content), its cells parsed as
    the records service takes them (None for an empty cell), and what the plan found."""

    number: int
    data: dict[str, Any]
    record_id: int | None = None
    version: int | None = None
    errors: Errors = field(default_factory=dict)
    plan: Plan = Plan.CREATE
    old: dict[str, Any] | None = None  # the stored record's data (updates and unchanged)
    new: dict[str, Any] | None = None  # the data as it would be stored, when it is valid

    def refuse(self, key: str, message: str) -> None:
        self.errors.setdefault(key, []).append(message)

    @property
    def values(self) -> dict[str, Any]:
        """What the row writes: a create leaves out empty cells (the field's default
        applies); an update gives them as None, which clears the stored value."""
        if self.plan == Plan.CREATE:
            return {k: v for k, v in self.data.items() if v is not None}
        return dict(self.data)


@dataclass
class Sheet:
    """A read file: the field keys of its columns, its rows, and an error for the file as a
    whole (unknown columns, too many rows), empty when none."""

    keys: list[str]
    rows: list[Row]
    error: str = ""


@dataclass
class Batch:
    """What a confirmation writes, as the session keeps it (JSON): ``creates`` as
    ``[number, data]``, ``updates`` as ``[number, id, version, data]`` and ``unchanged`` as
    ``[number, id, version]``, each version being the one the plan saw."""

    creates: list[list[Any]] = field(default_factory=list)
    updates: list[list[Any]] = field(default_factory=list)
    unchanged: list[list[Any]] = field(default_factory=list)

    @classmethod
    def of(cls, rows: Iterable[Row]) -> Batch:
        batch = cls()
        for row in rows:
            if row.plan == Plan.CREATE:
                batch.creates.append([row.number, row.values])
            elif row.old is None:
                continue  # an id or version the plan refused: nothing to try
            elif row.plan == Plan.UPDATE:
                batch.updates.append([row.number, row.record_id, row.version, row.values])
            else:
                batch.unchanged.append([row.number, row.record_id, row.version])
        return batch

    @classmethod
    def load(cls, stored: Mapping[str, Any]) -> Batch | None:
        """The batch a session kept; None for one kept in another form (by an older
        version of this page), which is then as good as expired."""
        creates, updates, unchanged = (stored.get(k) for k in ("creates", "updates", "unchanged"))
        if not (isinstance(creates, list) and isinstance(updates, list)):
            return None
        return cls(creates, updates, unchanged) if isinstance(unchanged, list) else None

    def dump(self) -> dict[str, Any]:
        return {"creates": self.creates, "updates": self.updates, "unchanged": self.unchanged}

    @property
    def writes(self) -> int:
        return len(self.creates) + len(self.updates)


# Reading -------------------------------------------------------------------------------------


def _whole(text: str) -> int | None:
    """A whole number as a person or an export writes it; None for anything else (a number
    of more than 30 digits included: no record has such an id)."""
    found = re.fullmatch(r"\s*([+-]?[0-9]{1,30})\s*", text)
    return int(found.group(1)) if found else None


def _shown(text: str) -> str:
    return text if len(text) <= 30 else text[:30] + "…"


def _header(
    fields: Mapping[str, Field], header: list[str], mode: Mode
) -> tuple[list[str | None], str]:
    """Each column's field key, ``_MARK`` and ``id`` or ``version`` (update mode), or None
    (ignored)."""
    by_name = {f.name.strip().lower(): k for k, f in fields.items()}
    labels = {label_column(k).lower() for k, f in fields.items() if is_reference(f)}
    columns: list[str | None] = []
    unknown = []
    for column in header:
        name = column.strip()
        if name in fields:  # a field keyed "id" or "version" is that field
            columns.append(name)
        elif name.lower() in by_name:
            columns.append(by_name[name.lower()])
        elif name.lower() in labels:
            columns.append(None)  # an export's "<reference> label" column: for people
        elif name.lower() in (ID, VERSION):
            columns.append(_MARK + name.lower() if mode == Mode.UPDATE else None)
        elif name.lower() in SYSTEM_COLUMNS or not name:
            columns.append(None)
        else:
            unknown.append(name)
    if unknown:
        return [], f"Unknown columns: {', '.join(unknown)}. Use the fields' keys or names."
    return columns, ""


def read_csv(fields: Mapping[str, Field], content: str, mode: Mode) -> Sheet:
    """Parse the file. Each cell is read as its field type says (``csv_parse``); a cell that
    cannot be read, or an id or version that is not a whole number, is an error of its row."""
    reader = csv.reader(io.StringIO(content))
    header = next(reader, None)
    if not header:
        return Sheet([], [], "The file is empty.")
    columns, error = _header(fields, header, mode)
    if error:
        return Sheet([], [], error)
    rows: list[Row] = []
    for index, cells in enumerate(reader):
        if index >= MAX_ROWS:
            return Sheet([], [], f"Import at most {MAX_ROWS} rows at a time.")
        if not any(cell.strip() for cell in cells):
            continue
        row = Row(len(rows) + 1, {})
        for key, text in zip(columns, cells, strict=False):
            if key is None:
                continue
            if key.startswith(_MARK):
                _read_system(row, key.removeprefix(_MARK), text)
            elif text == "":
                row.data[key] = None
            else:
                try:
                    row.data[key] = kind_of(fields[key].type).csv_parse(text)
                except InvalidValue as exc:
                    row.refuse(key, str(exc))
        rows.append(row)
    keys = [key for key in dict.fromkeys(columns) if key is not None and key in fields]
    return Sheet(keys, rows)


def _read_system(row: Row, key: str, text: str) -> None:
    """An update's id or version cell (empty: none)."""
    if not text.strip():
        return
    number = _whole(text)
    if number is None:
        shown = _shown(text.strip())
        row.refuse(key, f"Give the {key} as a whole number, as an export writes it, not {shown!r}.")
    elif key == ID:
        row.record_id = number
    else:
        row.version = number


# Planning ------------------------------------------------------------------------------------


def _stored(table: Table, ids: Iterable[int], *, lock: bool = False) -> dict[int, Record]:
    """The table's records among ``ids`` (ids no column could hold are simply not found),
    read locked when ``lock`` (inside a transaction)."""
    wanted = sorted({pk for pk in ids if 0 < pk <= BIGGEST})
    found: dict[int, Record] = {}
    for start in range(0, len(wanted), CHUNK):
        query = Record.objects.filter(table=table, pk__in=wanted[start : start + CHUNK])
        if lock:
            query = query.select_for_update().only("pk", "version")
        found.update((record.pk, record) for record in query)
    return found


def plan(table: Table, sheet: Sheet, user: Any, mode: Mode) -> None:
    """Decide what each row does (``row.plan``) and note what refuses it: an id of no record
    of this table, an id twice in the file, a version other than the record's, a row the user
    may not write. Validation proper is the dry run's (``apply``)."""
    schema = schema_for(table)
    may_add, may_change = can(user, table, Action.ADD), can(user, table, Action.CHANGE)
    updating = mode == Mode.UPDATE
    stored = _stored(table, [r.record_id for r in sheet.rows if r.record_id is not None])
    seen: dict[int, int] = {}
    for row in sheet.rows:
        if updating and row.record_id is None and ID in row.errors:
            row.plan = Plan.UPDATE  # an id that is not a number: neither update nor create
            continue
        if row.record_id is None or not updating:
            row.plan = Plan.CREATE
            if not may_add:
                row.refuse(ALL, f"You may not add records to {table.name}.")
            new, errors = clean_data(schema, row.values, creating=True)
            row.new = None if errors else new
            continue
        row.plan = Plan.UPDATE
        pk = row.record_id
        if pk in seen:
            row.refuse(ID, f"Record {pk} is already in row {seen[pk]}.")
            continue
        seen[pk] = row.number
        record = stored.get(pk)
        if not may_change:
            row.refuse(ID, f"You may not change records of {table.name}.")
        elif record is None:
            row.refuse(ID, f"{table.name} has no record {pk}.")
        elif row.version is not None and row.version != record.version:
            row.refuse(
                VERSION,
                f"Record {pk} changed since it was exported: version {record.version} now, "
                f"{row.version} in the file.",
            )
        else:
            row.version, row.old = record.version, record.data
            new, errors = clean_data(schema, {**record.data, **row.values}, creating=False)
            row.new = None if errors else new
            if new == record.data and not errors:
                row.plan = Plan.UNCHANGED


# Applying ------------------------------------------------------------------------------------


class _RollBack(Exception):
    """Raised to undo a dry run, or a confirmation that met errors."""


@dataclass
class Outcome:
    """What ``apply`` met: errors by row number, and one for the import as a whole."""

    row_errors: dict[int, Errors] = field(default_factory=dict)
    error: str = ""

    def add(self, number: int, errors: Mapping[str, list[str]]) -> None:
        for key, messages in errors.items():
            self.row_errors.setdefault(number, {}).setdefault(key, []).extend(messages)


def apply(table: Table, batch: Batch, user: Any, *, commit: bool) -> Outcome:
    """Write the batch, all or nothing; with ``commit=False`` (the preview) roll it back
    whatever it met. Nothing is written when anything is refused."""
    outcome = Outcome()
    try:
        with transaction.atomic():
            _check_rights(table, batch, user, outcome)
            _check_versions(table, batch, outcome)
            _write(table, batch, user, outcome)
            if outcome.row_errors or outcome.error or not commit:
                raise _RollBack
            trail.record(
                "record.import",
                table,
                details={"created": len(batch.creates), "updated": len(batch.updates)},
            )
    except _RollBack:
        pass
    return outcome


def _check_rights(table: Table, batch: Batch, user: Any, outcome: Outcome) -> None:
    """The user's grants as they are now (they may have changed since the preview)."""
    if batch.creates and not can(user, table, Action.ADD):
        for number, *_ in batch.creates:
            outcome.add(number, {ALL: [f"You may not add records to {table.name}."]})
    if batch.updates and not can(user, table, Action.CHANGE):
        for number, *_ in batch.updates:
            outcome.add(number, {ID: [f"You may not change records of {table.name}."]})


def _check_versions(table: Table, batch: Batch, outcome: Outcome) -> None:
    """Every record the batch names, read locked: still there, at the version planned."""
    named = [(n, pk, version) for n, pk, version, *_ in batch.updates + batch.unchanged]
    stored = _stored(table, [pk for _, pk, _ in named], lock=True)
    for number, pk, version in named:
        record = stored.get(pk)
        if record is None:
            outcome.add(number, {ID: [f"Record {pk} was deleted after the file was checked."]})
        elif record.version != version:
            outcome.add(
                number,
                {
                    VERSION: [
                        f"Record {pk} changed after the file was checked: version "
                        f"{record.version} now, {version} then."
                    ]
                },
            )


def _write(table: Table, batch: Batch, user: Any, outcome: Outcome) -> None:
    """The updates, then the creates, each refusal kept by row number. An update that writes
    a unique value a create then takes is refused at the create, as the database decides."""
    if batch.updates and not outcome.row_errors:
        changes = [{"id": pk, "version": v, "data": data} for _, pk, v, data in batch.updates]
        try:
            records.bulk_update(table, changes, actor=user)
        except BulkInvalid as exc:
            for index, errors in exc.errors.items():
                outcome.add(batch.updates[index][0], errors)
        except ZStorageError as exc:  # a record changed or went while this ran
            outcome.error = f"{exc.message} Nothing was imported; upload the file again."
    if batch.creates:
        try:
            records.bulk_create(table, [data for _, data in batch.creates], actor=user)
        except BulkInvalid as exc:
            for index, errors in exc.errors.items():
                outcome.add(batch.creates[index][0], errors)
        except ZStorageError as exc:  # the table's fields changed during the write
            outcome.error = f"{exc.message} Nothing was imported."
