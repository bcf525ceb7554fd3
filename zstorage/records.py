"""Record writes: the one path every create, update and delete takes (REST API, CRUD pages,
handler context). Each write validates, writes the record and its audit row, and emits a
``RecordChanged`` event, all in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from zstorage import indexes
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
from zstorage.models import EventKind, Field, Record, RecordChange, Table
from zstorage.validation import TableSchema, clean_data

#: Who writes: a request's user (anonymous users are recorded as nobody) or None.
Actor = AbstractBaseUser | AnonymousUser | None
Errors = dict[str, list[str]]


def _user(actor: Actor) -> Any:
    return actor if actor is not None and actor.is_authenticated else None


def _validate(
    schema: TableSchema, data: Mapping[str, Any], *, creating: bool, record_id: int | None
) -> tuple[dict[str, Any], Errors]:
    clean, errors = clean_data(schema, dict(data), creating=creating)
    _check_references(schema, clean, errors)
    _check_unique(schema, clean, errors, record_id)
    return clean, errors


def _check_references(schema: TableSchema, clean: dict[str, Any], errors: Errors) -> None:
    """What only the database can tell about a value (a reference to no record)."""
    for key, fld in schema.fields.items():
        if key in clean:
            for message in kind_of(fld.type).missing(fld.options, [clean[key]]).values():
                errors.setdefault(key, []).append(message)


def _check_unique(
    schema: TableSchema, clean: dict[str, Any], errors: Errors, record_id: int | None
) -> None:
    """A friendly early answer; the unique index is what really decides (see indexes.py)."""
    for rule, keys in schema.unique_rules():
        if not all(key in clean for key in keys):
            continue
        clash = Record.objects.filter(table=schema.table, **{f"data__{k}": clean[k] for k in keys})
        if record_id is not None:
            clash = clash.exclude(pk=record_id)
        if clash.exists():
            errors.setdefault(keys[0], []).append(rule.message)


def _unique_error(schema: TableSchema, error: IntegrityError) -> RecordInvalid:
    rule_id = indexes.violated_rule_id(error)
    for rule, keys in schema.unique_rules():
        if rule.pk == rule_id:
            return RecordInvalid({keys[0]: [rule.message]})
    raise error


def _save(schema: TableSchema, record: Record) -> None:
    """Save inside a savepoint so a uniqueness race becomes a clean RecordInvalid."""
    try:
        with transaction.atomic():
            record.save()
    except IntegrityError as exc:
        raise _unique_error(schema, exc) from exc


def _audit_and_emit(
    kind: EventKind,
    record: Record,
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
    actor: Actor,
    table: Table,
) -> None:
    fields = changed_fields(old, new)
    RecordChange.objects.create(
        table=table,
        record_id=record.pk,
        kind=kind,
        version=record.version,
        changes={key: [(old or {}).get(key), (new or {}).get(key)] for key in fields},
        actor=_user(actor),
    )
    emit(
        RecordChanged(
            kind=kind,
            table=table,
            record_id=record.pk,
            version=record.version,
            old=old,
            new=new,
            changed_fields=fields,
            actor=_user(actor),
            at=timezone.now(),
        )
    )


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
    """Create every row or none; errors are reported per row index."""
    schema = TableSchema.load(table)
    with transaction.atomic():
        records: list[Record] = []
        row_errors: dict[int, Errors] = {}
        for index, data in enumerate(rows):
            clean, errors = _validate(schema, data, creating=True, record_id=None)
            if errors:
                row_errors[index] = errors
                continue
            record = Record(
                table=table, data=clean, created_by=_user(actor), updated_by=_user(actor)
            )
            try:
                _save(schema, record)
            except RecordInvalid as exc:
                row_errors[index] = exc.errors
                continue
            _audit_and_emit(EventKind.CREATE, record, None, clean, actor, table)
            records.append(record)
        if row_errors:
            transaction.set_rollback(True)
            if _single:
                raise RecordInvalid(row_errors[0])
            raise BulkInvalid(row_errors)
    return records


def _locked(table: Table, record_id: int) -> Record:
    try:
        return Record.objects.select_for_update().get(table=table, pk=record_id)
    except Record.DoesNotExist:
        raise RecordNotFound(f"No record {record_id} in table {table.slug!r}.") from None


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
    """Update every row (``{"id", "data", "version"?}``) or none."""
    schema = TableSchema.load(table)
    with transaction.atomic():
        records: list[Record] = []
        row_errors: dict[int, Errors] = {}
        for index, row in enumerate(rows):
            record = _locked(table, int(row["id"]))
            expected = row.get("version")
            if expected is not None and int(expected) != record.version:
                raise VersionConflict(record.pk, int(expected), record.version)
            old = dict(record.data)
            merged = dict(row["data"]) if replace else {**old, **row["data"]}
            clean, errors = _validate(schema, merged, creating=False, record_id=record.pk)
            if errors:
                row_errors[index] = errors
                continue
            if clean == old:
                records.append(record)
                continue
            record.data, record.version, record.updated_by = clean, record.version + 1, _user(actor)
            try:
                _save(schema, record)
            except RecordInvalid as exc:
                row_errors[index] = exc.errors
                continue
            _audit_and_emit(EventKind.UPDATE, record, old, clean, actor, table)
            records.append(record)
        if row_errors:
            transaction.set_rollback(True)
            if _single:
                raise RecordInvalid(row_errors[0])
            raise BulkInvalid(row_errors)
    return records


def referencing_fields(table: Table) -> Iterable[Field]:
    """Reference fields (in any table) that point at records of ``table``."""
    return fields_referencing(table.slug).select_related("table")


def delete_record(
    table: Table, record_id: int, *, actor: Actor = None, expected_version: int | None = None
) -> None:
    """Delete a record; refused while other records reference it."""
    with transaction.atomic():
        record = _locked(table, record_id)
        if expected_version is not None and expected_version != record.version:
            raise VersionConflict(record.pk, expected_version, record.version)
        children = Q()
        for fld in referencing_fields(table):
            children |= Q(table=fld.table, **{f"data__{fld.key}": record.pk})
        if children and Record.objects.filter(children).exists():
            raise RecordReferenced(
                f"Record {record.pk} is referenced by other records; delete or change them first."
            )
        old = dict(record.data)
        record.version += 1
        Record.objects.filter(pk=record.pk).delete()
        _audit_and_emit(EventKind.DELETE, record, old, None, actor, table)
