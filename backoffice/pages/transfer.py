"""CSV export of a record list (what the filters show) and CSV import with a preview.

An export writes each record's id and version beside its values, so that a file edited in a
spreadsheet can come back as updates: the import's "Update by id" mode updates the records a
file's ids name (checking their versions) and creates the rows without one; "Create new
records" ignores the ids. Reading and planning the import, and applying it all or nothing, is
``backoffice.csv_import``: the preview applies the plan in a transaction it rolls back, so the
errors it lists per row are the ones a real import would meet. Only a clean preview can be
confirmed; its plan waits in the session (one per session, the newest), never in a hidden form
field a person could edit. A cell is written and read as its field type says (``csv_format`` /
``csv_parse`` in ``zstorage.fields``), text that a spreadsheet would run as a formula quoted
with "'".
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from backoffice.access import table_for
from backoffice.csv_import import (
    ID,
    MAX_ROWS,
    MODES,
    VERSION,
    Batch,
    Errors,
    Mode,
    Plan,
    Row,
    Sheet,
    apply,
    plan,
    read_csv,
)
from backoffice.listing import Listing
from backoffice.references import is_reference, label_column, reference_labels
from backoffice.values import display_value
from zstorage import reads
from zstorage.fields import kind_of
from zstorage.models import Field, Record, Table
from zstorage.permissions import Action, can

PREVIEW_ROWS = 20
#: The session key prefix of a pending import (one per session).
PENDING = "import:"


class _Echo:
    """A write-only file for ``csv.writer`` that hands each line back to a streaming response."""

    def write(self, value: str) -> str:
        return value


def csv_text(field: Field, value: Any) -> str:
    return kind_of(field.type).csv_format(value)


def _lines(user: Any, fields: Mapping[str, Field], listing: Listing) -> Iterator[str]:
    """The header, then a line per record: its id and version (unless a field has that key,
    which then keeps the column), then its values; after each reference, a "<key> label"
    column naming the record it points at (empty where the user may not see that table; an
    import ignores these columns)."""
    system = [column for column in (ID, VERSION) if column not in fields]
    references = {key for key, fld in fields.items() if is_reference(fld)}
    header: list[str] = [*system]
    for key in fields:
        header += [key, label_column(key)] if key in references else [key]
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow(header)  # the BOM says it is UTF-8
    for chunk in _chunks(listing.ordered().iterator(chunk_size=EXPORT_CHUNK), EXPORT_CHUNK):
        labels = reference_labels(user, fields, (record.data for record in chunk))
        for record in chunk:
            ids = {ID: str(record.pk), VERSION: str(record.version)}
            row = [ids[column] for column in system]
            for key, fld in fields.items():
                value = record.data.get(key)
                row.append(csv_text(fld, value))
                if key in references:
                    named = labels.label(key, value) if value is not None else ""
                    row.append(named if named != f"#{value}" else "")
            yield writer.writerow(row)


#: Records an export reads (and labels the references of) at a time.
EXPORT_CHUNK = 1000


def _chunks(records: Iterator[Record], size: int) -> Iterator[list[Record]]:
    chunk: list[Record] = []
    for record in records:
        chunk.append(record)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@require_GET
def export_csv(request: HttpRequest, slug: str) -> StreamingHttpResponse:
    table = table_for(request, slug, Action.VIEW)
    listing = Listing.from_request(table, request.GET)
    response = StreamingHttpResponse(
        _lines(request.user, listing.fields, listing), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{table.slug}.csv"'
    return response


def max_bytes() -> int:
    """The largest CSV file an import takes (``QUAYMASTER_IMPORT_MAX_BYTES``)."""
    return int(settings.QUAYMASTER_IMPORT_MAX_BYTES)


def too_large_message() -> str:
    return f"The file is larger than {filesizeformat(max_bytes())}: nothing was imported."


def import_table(request: HttpRequest, slug: str) -> Table:
    """The table an import goes into: 404 when the user may not see it, 403 when they may
    neither add nor change its records (each row is then checked for what it does)."""
    table = table_for(request, slug, Action.VIEW)
    if not (can(request.user, table, Action.ADD) or can(request.user, table, Action.CHANGE)):
        raise PermissionDenied(f"You may not add or change records of {table.name}.")
    return table


def _page_context(request: HttpRequest, table: Table) -> dict[str, Any]:
    may_add = can(request.user, table, Action.ADD)
    return {
        "table": table,
        "fields": reads.fields_of(table),
        "modes": MODES,
        "mode": Mode.CREATE if may_add else Mode.UPDATE,
        "max_rows": MAX_ROWS,
        "max_size": max_bytes(),
        "crumbs": [
            ("Records", reverse("backoffice:data")),
            (table.name, reverse("backoffice:records", args=[table.slug])),
            ("Import CSV", None),
        ],
    }


def upload_too_large(request: HttpRequest, slug: str) -> HttpResponse:
    """The answer to an upload refused by its size before its body was read (413): the import
    page with the error, as the view shows its own; under htmx, which swaps no 4xx but this
    project's 409 and 422, a redirect to that page with the error as a message."""
    table = import_table(request, slug)  # 404/403 as the page itself would answer
    if request.htmx:  # type: ignore[attr-defined]
        messages.error(request, too_large_message())
        response = HttpResponse(too_large_message(), status=413, content_type="text/plain")
        response["HX-Redirect"] = reverse("backoffice:import", args=[table.slug])
        return response
    context = _page_context(request, table) | {"error": too_large_message()}
    return render(request, "zstorage/records/import.html", context, status=413)


@require_http_methods(["GET", "POST"])
def import_csv(request: HttpRequest, slug: str) -> HttpResponse:
    table = import_table(request, slug)
    context = _page_context(request, table)
    if request.method == "POST" and request.POST.get("batch"):
        return _confirm(request, table, context)
    if request.method == "POST":
        context.update(_upload(request, table, context["fields"]))
    status = 422 if context.get("error") or context.get("row_errors") else 200
    return render(request, "zstorage/records/import.html", context, status=status)


def _upload(request: HttpRequest, table: Table, fields: Mapping[str, Field]) -> dict[str, Any]:
    mode = request.POST.get("mode", Mode.CREATE)
    if mode not in set(Mode):
        return {"error": "Choose whether the rows create new records or update by id."}
    upload = request.FILES.get("file")
    if upload is None:
        return {"error": "Choose a CSV file.", "mode": mode}
    if upload.size and upload.size > max_bytes():
        return {"error": too_large_message(), "mode": mode}
    try:
        content = upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        return {"error": "Save the file as UTF-8 text.", "mode": mode}
    sheet = read_csv(fields, content, Mode(mode))
    return {"mode": mode} | _preview(request, table, fields, sheet, Mode(mode))


def _preview(
    request: HttpRequest, table: Table, fields: Mapping[str, Field], sheet: Sheet, mode: Mode
) -> dict[str, Any]:
    if sheet.error:
        return {"error": sheet.error}
    if not sheet.rows:
        return {"error": "The file has no rows to import."}
    plan(table, sheet, request.user, mode)
    batch = Batch.of(sheet.rows)
    outcome = apply(table, batch, request.user, commit=False)  # the dry run
    row_errors: dict[int, Errors] = {}
    for row in sheet.rows:  # the plan's errors first, then what the dry run met (once)
        for key, found in [*row.errors.items(), *outcome.row_errors.get(row.number, {}).items()]:
            listed = row_errors.setdefault(row.number, {}).setdefault(key, [])
            listed.extend(message for message in found if message not in listed)
    preview: dict[str, Any] = {
        "keys": sheet.keys,
        "row_count": len(sheet.rows),
        "counts": _counts(batch),
        "preview_rows": _preview_rows(fields, sheet, row_errors),
        "row_errors": [(n, errors) for n, errors in sorted(row_errors.items())][:200],
        "error_count": len(row_errors),
        "error": outcome.error,
    }
    if row_errors or outcome.error:
        return preview
    preview["ready"] = True
    if batch.writes:
        key = uuid.uuid4().hex
        for old in [k for k, _ in request.session.items() if k.startswith(PENDING)]:
            del request.session[old]  # one pending import per session: the newest
        request.session[PENDING + key] = {"table": table.pk, "mode": mode} | batch.dump()
        preview["batch"] = key
    return preview


def _counts(batch: Batch) -> dict[str, int]:
    return {
        "create": len(batch.creates),
        "update": len(batch.updates),
        "unchanged": len(batch.unchanged),
    }


def _preview_rows(
    fields: Mapping[str, Field], sheet: Sheet, row_errors: Mapping[int, Errors]
) -> list[dict[str, Any]]:
    """Up to PREVIEW_ROWS rows in file order, the rows that fail or write chosen first: each
    with what it does and its cells as they would be stored (a changed cell with its old
    value), or as read when the row does not validate."""

    def quiet(row: Row) -> bool:
        return row.number not in row_errors and row.plan == Plan.UNCHANGED

    shown = sorted(sorted(sheet.rows, key=quiet)[:PREVIEW_ROWS], key=lambda row: row.number)
    return [
        {
            "number": row.number,
            "plan": row.plan.value,
            "record_id": row.record_id,
            "found": row.old is not None,  # a record of the table: link to it
            "errors": row_errors.get(row.number),
            "cells": [_cell(fields[key], key, row) for key in sheet.keys],
        }
        for row in shown
    ]


def _cell(field: Field, key: str, row: Row) -> tuple[str, str | None]:
    """A preview cell's text, and the stored value it replaces when it changes one."""
    if row.new is None:
        value = row.data.get(key)
        return ("" if value is None else str(value)), None
    new, old = row.new.get(key), (row.old or {}).get(key)
    was = display_value(field, old) if row.old is not None and old != new else None
    return display_value(field, new), was


def _confirm(request: HttpRequest, table: Table, context: dict[str, Any]) -> HttpResponse:
    stored = request.session.pop(PENDING + request.POST["batch"], None)
    batch = Batch.load(stored) if stored and stored.get("table") == table.pk else None
    stored = stored or {}
    if batch is None:
        context["error"] = "This preview has expired; upload the file again."
        return render(request, "zstorage/records/import.html", context, status=422)
    outcome = apply(table, batch, request.user, commit=True)
    if outcome.row_errors or outcome.error:
        # The table or a record changed since the preview (a new rule, a record taking a
        # unique value, a record edited or deleted): nothing was written.
        context.update(
            error=outcome.error,
            row_errors=[(n, errors) for n, errors in sorted(outcome.row_errors.items())][:200],
            error_count=len(outcome.row_errors),
            row_count=len(batch.creates) + len(batch.updates) + len(batch.unchanged),
        )
        return render(request, "zstorage/records/import.html", context, status=422)
    counts = _counts(batch)
    if stored.get("mode") == Mode.UPDATE:
        done = (
            f"Imported into {table.name}: {counts['create']} created, "
            f"{counts['update']} updated, {counts['unchanged']} unchanged."
        )
    else:
        done = f"Imported {counts['create']} records into {table.name}."
    messages.success(request, done)
    return redirect("backoffice:records", table.slug)
