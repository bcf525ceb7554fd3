"""Record writes: the one path every create, update and delete takes (REST API, CRUD pages,
handler context). Each write validates, writes the record and its audit row, and emits a
``RecordChanged`` event, all in one transaction.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from audit import trail
from zstorage import indexes
from zstorage.dialects import LockedRow, dialect
from zstorage.errors import (
    BulkInvalid,
    RecordInvalid,
    RecordNotFound,
    RecordReferenced,
    VersionConflict,
    ZStorageError,
)
from zstorage.events import RecordChanged, changed_fields, emit
from zstorage.fields import kind_of
from zstorage.fields.structured import fields_referencing
from zstorage.models import EventKind, Field, Record, Table
from zstorage.schema_cache import current_token, reload, schema_for
from zstorage.validation import ALL, TableSchema, clean_data

#: Who writes: a request's user (anonymous users are recorded as nobody) or None.
Actor = AbstractBaseUser | AnonymousUser | None
Errors = dict[str, list[str]]


def _user(actor: Actor) -> Any:
    return actor if actor is not None and actor.is_authenticated else None


def _check_references(schema: TableSchema, cleaned: Sequence[dict[str, Any]]) -> list[Errors]:
    """What only the database can tell about a value (a reference to no record): one query
    per reference field for all the rows."""
    found: list[Errors] = [{} for _ in cleaned]
    for key, fld in schema.fields.items():
        values = [clean[key] for clean in cleaned if key in clean]
        if not values:
            continue
        refused = kind_of(fld.type).missing(fld.options, values)
        if refused:
            for index, clean in enumerate(cleaned):
                if key in clean and clean[key] in refused:
                    found[index].setdefault(key, []).append(refused[clean[key]])
    return found


def _check_unique(
    schema: TableSchema, clean: dict[str, Any], errors: Errors, record_id: int | None
) -> None:
    """A friendly answer, asked only when a write already has errors or was refused by a
    unique index (which is what really decides, see indexes.py)."""
    for rule, keys in schema.unique_rules():
        if not all(key in clean for key in keys):
            continue
        clash = Record.objects.filter(table=schema.table, **{f"data__{k}": clean[k] for k in keys})
        if record_id is not None:
            clash = clash.exclude(pk=record_id)
        if clash.exists():
            errors.setdefault(keys[0], []).append(rule.message)


def _check_unique_in_batch(schema: TableSchema, cleaned: Sequence[dict[str, Any]]) -> list[Errors]:
    """Rows of one bulk write that repeat an earlier row's unique values."""
    found: list[Errors] = [{} for _ in cleaned]
    for rule, keys in schema.unique_rules():
        seen: set[str] = set()
        for index, clean in enumerate(cleaned):
            if all(key in clean for key in keys):
                values = json.dumps([clean[k] for k in keys], sort_keys=True)
                if values in seen:
                    found[index].setdefault(keys[0], []).append(rule.message)
                seen.add(values)
    return found


def _unique_error(schema: TableSchema, error: IntegrityError) -> RecordInvalid:
    rule_id = indexes.violated_rule_id(error)
    for rule, keys in schema.unique_rules():
        if rule.pk == rule_id:
            return RecordInvalid({keys[0]: [rule.message]})
    raise error


def _changes(old: dict[str, Any] | None, new: dict[str, Any] | None) -> tuple[list[str], str]:
    """The changed keys, and the audit row's ``{key: [old, new]}`` as JSON text."""
    fields = changed_fields(old, new)
    changes = {key: [(old or {}).get(key), (new or {}).get(key)] for key in fields}
    return fields, json.dumps(changes)


RECORD_COLUMNS = [f.attname for f in Record._meta.concrete_fields]
#: Where the creator's and the updater's ids stand among the columns.
USER_COLUMNS = (
    ("created_by", RECORD_COLUMNS.index("created_by_id")),
    ("updated_by", RECORD_COLUMNS.index("updated_by_id")),
)


def _record(table: Table, values: tuple[Any, ...], *users: Any) -> Record:
    """A record as written, built as Django builds one it read (positional values of every
    column in order: a third of the cost of keyword arguments), its table attached, and the
    users who created and last changed it when the caller has them (``*users``: creator,
    updater), so reading their names costs no query."""
    record = Record.from_db(connection.alias, RECORD_COLUMNS, values)
    record._state.fields_cache["table"] = table
    for (name, index), user in zip(USER_COLUMNS, users, strict=False):
        if user is not None or values[index] is None:
            record._state.fields_cache[name] = user
    return record


def _refuse(row_errors: dict[int, Errors], single: bool) -> ZStorageError:
    transaction.set_rollback(True)
    return RecordInvalid(row_errors[0]) if single else BulkInvalid(row_errors)


class TooManyRows(ZStorageError):
    """A bulk write of more rows than ``QUAYMASTER_BULK_MAX_ROWS``: refused before any write."""

    code = "too_many_rows"
    status = 413


def check_bulk_size(rows: Sequence[object]) -> None:
    """Refuse an API bulk write over the row cap, so one transaction never holds the write
    lock for long. The bulk endpoints call it before any work."""
    limit: int = getattr(settings, "QUAYMASTER_BULK_MAX_ROWS", 1000)
    if len(rows) > limit:
        raise TooManyRows(
            f"Nothing was written: a bulk write takes at most {limit} rows, not {len(rows)}."
        )


def create_record(table: Table, data: Mapping[str, Any], *, actor: Actor = None) -> Record:
    return bulk_create(table, [data], actor=actor, _single=True)[0]


def bulk_create(
    table: Table, rows: Sequence[Mapping[str, Any]], *, actor: Actor = None, _single: bool = False
) -> list[Record]:
    """Create every row or none; errors are reported per row index.

    Validated against the cached schema; when the INSERT finds the table under another schema
    token (changed by another process since), validated again against the new one."""
    schema = schema_for(table)
    with transaction.atomic():
        created = _create(schema, rows, actor, _single)
        if created is None:
            created = _create(reload(table), rows, actor, _single)
        if created is None:  # the schema changed twice during one write
            raise _refuse({0: {ALL: [SCHEMA_CHANGED]}}, True)
    return created


#: A write that met a schema changing under it twice in a row.
SCHEMA_CHANGED = "The table's fields changed during the write; try again."


def _create(
    schema: TableSchema, rows: Sequence[Mapping[str, Any]], actor: Actor, single: bool
) -> list[Record] | None:
    """Create the rows, or raise their errors; None when the table's schema token is no
    longer ``schema.token`` (nothing was written)."""
    table = schema.table
    cleaned: list[dict[str, Any]] = []
    row_errors: dict[int, Errors] = {}
    for index, data in enumerate(rows):
        clean, errors = clean_data(schema, dict(data), creating=True)
        cleaned.append(clean)
        if errors:
            row_errors[index] = errors
    for index, errors in enumerate(_check_references(schema, cleaned)):
        for key, messages in errors.items():
            row_errors.setdefault(index, {}).setdefault(key, []).extend(messages)
    if row_errors:
        if current_token(table.pk) != schema.token:
            return None  # judged by a schema that has changed since: judge again
        raise _unique_errors(schema, cleaned, row_errors, single)
    user = _user(actor)
    actor_id = user.pk if user is not None else None
    at = timezone.now()
    texts = [json.dumps(clean) for clean in cleaned]
    audits = [_changes(None, clean) for clean in cleaned]
    try:
        ids = _insert(schema, texts, [audit for _, audit in audits], actor_id, at)
    except IntegrityError as exc:  # a unique index refused a row
        raise _unique_errors(schema, cleaned, {}, single, _unique_error(schema, exc)) from exc
    if len(ids) != len(cleaned):  # the table's schema token changed: nothing was written
        return None
    created = [
        _record(table, (pk, table.pk, clean, 1, at, at, actor_id, actor_id), user, user)
        for pk, clean in zip(ids, cleaned, strict=True)
    ]
    events = [
        RecordChanged(EventKind.CREATE, table, r.pk, 1, None, r.data, fields, user, at)
        for r, (fields, _) in zip(created, audits, strict=True)
    ]
    emit(events)
    return created


def _insert(
    schema: TableSchema, texts: list[str], audits: list[str], actor_id: Any, at: Any
) -> list[int]:
    """Insert the records and their audit rows; the new ids (none when the table's token is
    no longer ``schema.token``). Only where a unique rule can refuse a row does it run in a
    savepoint, so an IntegrityError leaves the caller's transaction usable."""
    table_id, token = schema.table.pk, schema.token

    def insert() -> list[int]:
        if len(texts) == 1:
            pk = dialect().create_record(table_id, token, texts[0], audits[0], actor_id, at)
            return [] if pk is None else [pk]
        ids = dialect().insert_records(table_id, token, texts, actor_id, at)
        if len(ids) == len(texts):
            changes = [(pk, "create", 1, audit) for pk, audit in zip(ids, audits, strict=True)]
            dialect().insert_changes(table_id, changes, actor_id, at)
        return ids

    if not schema.uniques:
        return insert()
    with transaction.atomic():
        return insert()


def _unique_errors(
    schema: TableSchema,
    cleaned: list[dict[str, Any]],
    row_errors: dict[int, Errors],
    single: bool,
    refused: RecordInvalid | None = None,
) -> ZStorageError:
    """Every row's errors, the unique clashes (with stored records, and within the batch)
    added: the slow path, taken only by a write that is refused. ``refused`` is what the
    unique index said, for when the checks find nothing (a write that committed after them)."""
    in_batch = _check_unique_in_batch(schema, cleaned)
    for index, clean in enumerate(cleaned):
        errors = row_errors.get(index, {})
        _check_unique(schema, clean, errors, None)
        for key, messages in in_batch[index].items():
            errors.setdefault(key, []).extend(messages)
        if errors:
            row_errors[index] = errors
    if not row_errors and refused is not None:
        row_errors[0] = refused.errors
    return _refuse(row_errors, single)


def update_record(
    table: Table,
    record_id: int,
    changes: Mapping[str, Any],
    *,
    actor: Actor = None,
    expected_version: int | None = None,
    replace: bool = False,
) -> Record:
    """Merge ``changes`` into the record (or replace its data with ``replace=True``).

    ``expected_version`` gives optimistic concurrency: a stale version raises
    VersionConflict (HTTP 409). A change that changes nothing writes nothing.
    """
    rows = [{"id": record_id, "data": changes, "version": expected_version}]
    return bulk_update(table, rows, actor=actor, replace=replace, _single=True)[0]


def bulk_update(
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    actor: Actor = None,
    replace: bool = False,
    _single: bool = False,
) -> list[Record]:
    """Update every row (``{"id", "data", "version"?}``) or none.

    Each record is read locked together with its table's schema token: a token other than
    the cached schema's means the schema changed, and it is read again before validating."""
    schema = schema_for(table)
    user = _user(actor)
    actor_id = user.pk if user is not None else None
    with transaction.atomic():
        records: list[Record] = []
        events: list[RecordChanged] = []
        row_errors: dict[int, Errors] = {}
        for index, row in enumerate(rows):
            record_id = int(row["id"])
            locked = _lock(table, record_id)
            if locked is None:
                raise RecordNotFound(f"No record {record_id} in table {table.slug!r}.")
            pk, old, version, created_at, updated_at, created_by, updated_by, token = locked
            if token != schema.token:
                schema = reload(table)
            expected = row.get("version")
            if expected is not None and int(expected) != version:
                raise VersionConflict(pk, int(expected), version)
            merged = dict(row["data"]) if replace else {**old, **row["data"]}
            clean, errors = clean_data(schema, merged, creating=False)
            for key, messages in _check_references(schema, [clean])[0].items():
                errors.setdefault(key, []).extend(messages)
            if errors:
                _check_unique(schema, clean, errors, pk)
                row_errors[index] = errors
                continue
            record = _record(
                table, (pk, table.pk, old, version, created_at, updated_at, created_by, updated_by)
            )
            if clean == old:
                records.append(record)
                continue
            at = timezone.now()
            fields, audit = _changes(old, clean)
            try:
                _write_update(schema, pk, clean, version + 1, fields, audit, actor_id, at)
            except RecordInvalid as exc:
                row_errors[index] = exc.errors
                continue
            record.data, record.version, record.updated_at = clean, version + 1, at
            record.updated_by_id = actor_id
            record._state.fields_cache["updated_by"] = user
            records.append(record)
            events.append(
                RecordChanged(
                    EventKind.UPDATE, table, pk, version + 1, old, clean, fields, user, at
                )
            )
        if row_errors:
            raise _refuse(row_errors, _single)
        emit(events)
    return records


def _write_update(
    schema: TableSchema,
    pk: int,
    clean: dict[str, Any],
    version: int,
    fields: list[str],
    audit: str,
    actor_id: Any,
    at: Any,
) -> None:
    """Only a change to a key some unique rule covers can clash: that one runs in a
    savepoint, so a clash becomes a clean RecordInvalid."""
    write = functools.partial(
        dialect().update_record,
        schema.table.pk,
        pk,
        json.dumps(clean),
        version,
        audit,
        actor_id,
        at,
    )
    if not schema.unique_keys.intersection(fields):
        write()
        return
    try:
        with transaction.atomic():
            write()
    except IntegrityError as exc:
        raise _unique_error(schema, exc) from exc


def _lock(table: Table, record_id: int) -> LockedRow | None:
    """The record's row, read locked (``dialect().lock_record``); None when there is no such
    record, an id beyond 64 bits included (no database could hold it, and the drivers raise
    rather than compare it)."""
    if not -(2**63) <= record_id < 2**63:
        return None
    return dialect().lock_record(table.pk, record_id)


def referencing_fields(table: Table) -> Iterable[Field]:
    """Reference fields (in any table) that point at records of ``table``."""
    return fields_referencing(table.slug).select_related("table")


def delete_record(
    table: Table, record_id: int, *, actor: Actor = None, expected_version: int | None = None
) -> None:
    """Delete a record; refused while other records reference it."""
    with transaction.atomic():
        locked = _lock(table, record_id)
        if locked is None:
            raise RecordNotFound(f"No record {record_id} in table {table.slug!r}.")
        pk, old, version, *_, token = locked
        if token != schema_for(table).token:
            reload(table)  # the links the event goes to are this token's
        if expected_version is not None and expected_version != version:
            raise VersionConflict(pk, expected_version, version)
        children = Q()
        for fld in referencing_fields(table):
            children |= Q(table=fld.table, **{f"data__{fld.key}": pk})
        if children and Record.objects.filter(children).exists():
            raise RecordReferenced(
                f"Record {pk} is referenced by other records; delete or change them first."
            )
        Record.objects.filter(pk=pk).delete()
        trail.record("record.delete", Record(pk=pk, table=table), before=old)
        at = timezone.now()
        fields, audit = _changes(old, None)
        user = _user(actor)
        actor_id = user.pk if user is not None else None
        dialect().insert_changes(table.pk, [(pk, "delete", version + 1, audit)], actor_id, at)
        emit([RecordChanged(EventKind.DELETE, table, pk, version + 1, old, None, fields, user, at)])
