"""CSV export of a record list (what the filters show) and CSV import with a preview.

An import is all or nothing, as ``records.bulk_create`` is: the preview runs that very
function inside a transaction it rolls back, so the errors it lists per row are the ones a
real import would meet (uniqueness inside the file included). Only a clean preview can be
confirmed; its rows wait in the session, never in a hidden form field a person could edit.
A cell is written and read as its field type says (``csv_format`` / ``csv_parse`` in
``zstorage.fields``), text that a spreadsheet would run as a formula quoted with "'".
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from backoffice.access import table_for
from backoffice.listing import Listing
from zstorage import reads, records
from zstorage.errors import BulkInvalid
from zstorage.fields import InvalidValue, kind_of
from zstorage.models import Field, Table
from zstorage.permissions import Action

MAX_ROWS = 5000
PREVIEW_ROWS = 20


#: Columns an export writes that an import skips: the database sets them.
SYSTEM_COLUMNS = {"id", "version", "created_at", "updated_at"}

Errors = dict[str, list[str]]


class _Echo:
    """A write-only file for ``csv.writer`` that hands each line back to a streaming response."""

    def write(self, value: str) -> str:
        return value


def csv_text(field: Field, value: Any) -> str:
    return kind_of(field.type).csv_format(value)


def _lines(fields: Mapping[str, Field], listing: Listing) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow(["id", *fields])  # the BOM tells spreadsheets it is UTF-8
    for record in listing.ordered().iterator(chunk_size=1000):
        row = [str(record.pk)] + [csv_text(f, record.data.get(k)) for k, f in fields.items()]
        yield writer.writerow(row)


@require_GET
def export_csv(request: HttpRequest, slug: str) -> StreamingHttpResponse:
    table = table_for(request, slug, Action.VIEW)
    listing = Listing.from_request(table, request.GET)
    response = StreamingHttpResponse(
        _lines(listing.fields, listing), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{table.slug}.csv"'
    return response


def _cell(field: Field, text: str) -> tuple[Any, str | None]:
    """A CSV cell as the records service takes it, or an error."""
    try:
        return kind_of(field.type).csv_parse(text), None
    except InvalidValue as exc:
        return None, str(exc)


def read_csv(
    fields: Mapping[str, Field], content: str
) -> tuple[list[str], list[dict[str, Any]], dict[int, Errors], str]:
    """Parse the file: the field keys of its columns, its rows, per-row cell errors, and an
    error for the file as a whole (unknown columns, too many rows), empty when none."""
    reader = csv.reader(io.StringIO(content))
    header = next(reader, None)
    if not header:
        return [], [], {}, "The file is empty."
    by_name = {f.name.strip().lower(): k for k, f in fields.items()}
    keys: list[str | None] = []
    unknown = []
    for column in header:
        name = column.strip()
        if name in fields:
            keys.append(name)
        elif name.lower() in by_name:
            keys.append(by_name[name.lower()])
        elif name in SYSTEM_COLUMNS or not name:
            keys.append(None)
        else:
            unknown.append(name)
    if unknown:
        return [], [], {}, f"Unknown columns: {', '.join(unknown)}. Use the fields' keys or names."
    rows: list[dict[str, Any]] = []
    errors: dict[int, Errors] = {}
    for index, cells in enumerate(reader):
        if index >= MAX_ROWS:
            return [], [], {}, f"Import at most {MAX_ROWS} rows at a time."
        if not any(cell.strip() for cell in cells):
            continue
        row: dict[str, Any] = {}
        for key, text in zip(keys, cells, strict=False):
            if key is None or text == "":
                continue
            value, error = _cell(fields[key], text)
            if error:
                errors.setdefault(len(rows), {})[key] = [error]
            else:
                row[key] = value
        rows.append(row)
    return [k for k in keys if k], rows, errors, ""


class _DryRun(Exception):
    """Raised to roll the preview's writes back."""


def dry_run(table: Table, rows: list[dict[str, Any]], user: Any) -> dict[int, Errors]:
    try:
        with transaction.atomic():
            records.bulk_create(table, rows, actor=user)
            raise _DryRun
    except BulkInvalid as exc:
        return exc.errors
    except _DryRun:
        return {}


def _merge(first: dict[int, Errors], second: dict[int, Errors]) -> dict[int, Errors]:
    merged = {index: dict(errors) for index, errors in first.items()}
    for index, errors in second.items():
        for key, found in errors.items():
            merged.setdefault(index, {}).setdefault(key, []).extend(found)
    return dict(sorted(merged.items()))


def max_bytes() -> int:
    """The largest CSV file an import takes (``QUAYMASTER_IMPORT_MAX_BYTES``)."""
    return int(settings.QUAYMASTER_IMPORT_MAX_BYTES)


def too_large_message() -> str:
    return f"The file is larger than {filesizeformat(max_bytes())}: nothing was imported."


def _page_context(table: Table) -> dict[str, Any]:
    return {
        "table": table,
        "fields": reads.fields_of(table),
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
    table = table_for(request, slug, Action.ADD)  # 404/403 as the page itself would answer
    if request.htmx:  # type: ignore[attr-defined]
        messages.error(request, too_large_message())
        response = HttpResponse(too_large_message(), status=413, content_type="text/plain")
        response["HX-Redirect"] = reverse("backoffice:import", args=[table.slug])
        return response
    context = _page_context(table) | {"error": too_large_message()}
    return render(request, "zstorage/records/import.html", context, status=413)


@require_http_methods(["GET", "POST"])
def import_csv(request: HttpRequest, slug: str) -> HttpResponse:
    table = table_for(request, slug, Action.ADD)
    context = _page_context(table)
    fields = context["fields"]
    if request.method == "POST" and request.POST.get("batch"):
        return _confirm(request, table, fields, context)
    if request.method == "POST":
        upload = request.FILES.get("file")
        if upload is None:
            context["error"] = "Choose a CSV file."
        elif upload.size and upload.size > max_bytes():
            context["error"] = too_large_message()
        else:
            try:
                content = upload.read().decode("utf-8-sig")
            except UnicodeDecodeError:
                context["error"] = "Save the file as UTF-8 text."
            else:
                context.update(_preview(request, table, fields, content))
    status = 422 if context.get("error") or context.get("row_errors") else 200
    return render(request, "zstorage/records/import.html", context, status=status)


def _preview(
    request: HttpRequest, table: Table, fields: Mapping[str, Field], content: str
) -> dict[str, Any]:
    keys, rows, cell_errors, error = read_csv(fields, content)
    if error:
        return {"error": error}
    if not rows:
        return {"error": "The file has no rows to import."}
    row_errors = _merge(cell_errors, dry_run(table, rows, request.user))
    preview: dict[str, Any] = {
        "keys": keys,
        "row_count": len(rows),
        "preview_rows": [
            (i + 1, row, row_errors.get(i)) for i, row in enumerate(rows[:PREVIEW_ROWS])
        ],
        "row_errors": [(i + 1, errors) for i, errors in row_errors.items()][:200],
        "error_count": len(row_errors),
    }
    if not row_errors:
        batch = uuid.uuid4().hex
        for key in [k for k, _ in request.session.items() if k.startswith("import:")]:
            del request.session[key]  # one pending import per session: the newest
        request.session[f"import:{batch}"] = {"table": table.pk, "rows": rows}
        preview["batch"] = batch
    return preview


def _confirm(
    request: HttpRequest, table: Table, fields: Mapping[str, Field], context: dict[str, Any]
) -> HttpResponse:
    stored = request.session.pop(f"import:{request.POST['batch']}", None)
    if not stored or stored.get("table") != table.pk:
        context["error"] = "This preview has expired; upload the file again."
        return render(request, "zstorage/records/import.html", context, status=422)
    try:
        created = records.bulk_create(table, stored["rows"], actor=request.user)
    except BulkInvalid as exc:
        # The table changed since the preview (a new rule, a record taking a unique value).
        context.update(
            row_errors=[(i + 1, errors) for i, errors in sorted(exc.errors.items())][:200],
            error_count=len(exc.errors),
            row_count=len(stored["rows"]),
        )
        return render(request, "zstorage/records/import.html", context, status=422)
    messages.success(request, f"Imported {len(created)} records into {table.name}.")
    return redirect("backoffice:records", table.slug)
