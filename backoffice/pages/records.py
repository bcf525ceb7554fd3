"""The generated CRUD pages over a table's records, for every user the table is granted to.

Writes go through ``zstorage.records`` (validation, audit trail, queue events in the same
transaction); reads through ``zstorage.reads``. The list answers htmx with its
``_record_table.html`` part only, rendered by the same view as the full page.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.roles import is_admin
from backoffice.access import allowed_actions, get_for, table_for
from backoffice.forms.records import (
    default_values,
    input_name,
    linked_table,
    record_inputs,
    reference_matches,
    stored_values,
    submitted_values,
    to_data,
)
from backoffice.listing import PAGE_SIZES, Listing
from backoffice.partials import partial_for
from backoffice.references import is_reference, of_records, records_named, reference_labels
from backoffice.values import change_rows, record_label
from workers.trace import record_timeline
from zstorage import reads, records
from zstorage.errors import RecordInvalid, RecordNotFound, RecordReferenced, VersionConflict
from zstorage.models import Field, Record, Table
from zstorage.permissions import Action, can, visible_tables
from zstorage.validation import TableSchema, clean_data


def _crumbs(table: Table, *more: tuple[str, str | None]) -> list[tuple[str, str | None]]:
    return [
        ("Records", reverse("backoffice:data")),
        (table.name, reverse("backoffice:records", args=[table.slug]) if more else None),
        *more,
    ]


def _record(request: HttpRequest, table: Table, record_id: int) -> Record:
    """A record of ``table``, which ``table_for`` has checked for this user."""
    records = Record.objects.filter(table=table).select_related("created_by", "updated_by")
    return get_for(request, records, pk=record_id)


@require_GET
def data_index(request: HttpRequest) -> HttpResponse:
    """The tables this user may open, with how many records each holds."""
    rows = [(table, table.records.count()) for table in visible_tables(request.user)]
    return render(
        request, "zstorage/records/index.html", {"rows": rows, "crumbs": [("Records", None)]}
    )


@require_GET
def record_list(request: HttpRequest, slug: str) -> HttpResponse:
    table = table_for(request, slug, Action.VIEW)
    listing = Listing.from_request(table, request.GET, partial(records_named, request.user))
    page = listing.page()
    context = {
        "table": table,
        "listing": listing,
        "page": page,
        "page_links": listing.page_links(page),
        "previous_href": listing.query_string(page=page.previous_page_number())
        if page.has_previous()
        else None,
        "next_href": listing.query_string(page=page.next_page_number())
        if page.has_next()
        else None,
        "export_href": reverse("backoffice:export", args=[slug]) + listing.query_string(),
        "columns": listing.columns(),
        "refs": of_records(request.user, listing.fields, page.object_list),
        "totals": listing.totals(),
        "page_sizes": PAGE_SIZES,
        "can": allowed_actions(request, table),
        "crumbs": _crumbs(table),
    }
    if partial_for(request, "records"):
        return render(request, "zstorage/records/_record_table.html", context)
    return render(request, "zstorage/records/list.html", context)


def _form_page(
    request: HttpRequest,
    table: Table,
    fields: dict[str, Field],
    values: dict[str, Any],
    *,
    record: Record | None = None,
    errors: dict[str, list[str]] | None = None,
    conflict: str = "",
    version: int | None = None,
    status: int = 200,
) -> HttpResponse:
    errors = errors or {}
    crumb = (
        (f"Edit {record_label(record, fields, table.display_field)}", None)
        if record
        else ("New record", None)
    )
    context = {
        "table": table,
        "record": record,
        "inputs": record_inputs(request.user, table, fields, values, errors),
        "form_errors": [m for key, ms in errors.items() if key not in fields for m in ms],
        "has_errors": any(errors.values()),
        "conflict": conflict,
        "version": version if version is not None else (record.version if record else None),
        "crumbs": _crumbs(table, crumb),
    }
    return render(request, "zstorage/records/form.html", context, status=status)


def _prechecked(
    table: Table, fields: dict[str, Field], data: dict[str, Any], parse_errors: dict[str, Any]
) -> dict[str, list[str]]:
    """When some input could not even be read, still show every other field's errors at once
    (checked by ZStorage's validation, without writing)."""
    readable = {k: v for k, v in data.items() if k not in parse_errors}
    _, errors = clean_data(TableSchema.load(table), readable, creating=True)
    errors = {k: v for k, v in errors.items() if k not in parse_errors}
    return {**errors, **parse_errors}


@require_http_methods(["GET", "POST"])
def record_create(request: HttpRequest, slug: str) -> HttpResponse:
    table = table_for(request, slug, Action.ADD)
    fields = reads.fields_of(table)
    if request.method != "POST":
        return _form_page(request, table, fields, default_values(fields))
    values = submitted_values(fields, request.POST)
    data, parse_errors = to_data(fields, values)
    if parse_errors:
        errors = _prechecked(table, fields, data, parse_errors)
        return _form_page(request, table, fields, values, errors=errors, status=422)
    try:
        record = records.create_record(table, data, actor=request.user)
    except RecordInvalid as exc:
        return _form_page(request, table, fields, values, errors=exc.errors, status=422)
    messages.success(
        request, f"Record {record_label(record, fields, table.display_field)} created."
    )
    if "add_another" in request.POST:
        return redirect("backoffice:record-new", slug)
    return redirect("backoffice:record", slug, record.pk)


@require_http_methods(["GET", "POST"])
def record_edit(request: HttpRequest, slug: str, record_id: int) -> HttpResponse:
    table = table_for(request, slug, Action.CHANGE)
    fields = reads.fields_of(table)
    record = _record(request, table, record_id)
    if request.method != "POST":
        return _form_page(request, table, fields, stored_values(fields, record.data), record=record)
    values = submitted_values(fields, request.POST)
    data, parse_errors = to_data(fields, values)
    if parse_errors:
        errors = _prechecked(table, fields, data, parse_errors)
        return _form_page(request, table, fields, values, record=record, errors=errors, status=422)
    version = request.POST.get("version", "")
    try:
        records.update_record(
            table,
            record.pk,
            data,
            actor=request.user,
            expected_version=int(version) if version.isdecimal() else None,
        )
    except RecordInvalid as exc:
        return _form_page(
            request, table, fields, values, record=record, errors=exc.errors, status=422
        )
    except VersionConflict as exc:
        conflict = (
            f"Someone else saved this record while you were editing it (it is now at version "
            f"{exc.current}). Open it again to see their changes, or save again to overwrite "
            "them with yours."
        )
        return _form_page(
            request,
            table,
            fields,
            values,
            record=record,
            conflict=conflict,
            version=exc.current,
            status=409,
        )
    except RecordNotFound:
        messages.error(request, "This record was deleted while you were editing it.")
        return redirect("backoffice:records", slug)
    messages.success(request, f"Record {record_label(record, fields, table.display_field)} saved.")
    return redirect("backoffice:record", slug, record.pk)


@require_POST
def record_validate(request: HttpRequest, slug: str) -> HttpResponse:
    """Live check of one field as the person leaves it (htmx, on blur): the same validation
    as saving, without the database checks (uniqueness, references) saving adds."""
    table = table_for(request, slug, Action.VIEW)
    editing = "version" in request.POST
    if not can(request.user, table, Action.CHANGE if editing else Action.ADD):
        raise PermissionDenied("You may not write records of this table.")
    fields = reads.fields_of(table)
    key = request.POST.get("_field", "")
    if key not in fields:
        raise Http404("No such field.")
    data, parse_errors = to_data(fields, submitted_values(fields, request.POST))
    if key in parse_errors:
        messages_for_field = parse_errors[key]
    else:
        readable = {k: v for k, v in data.items() if k not in parse_errors}
        _, errors = clean_data(TableSchema.load(table), readable, creating=not editing)
        messages_for_field = errors.get(key, [])
    return render(
        request,
        "zstorage/records/_field_errors.html",
        {"name": input_name(key), "errors": messages_for_field},
    )


@require_GET
def record_lookup(request: HttpRequest, slug: str, key: str) -> HttpResponse:
    """Options for a reference select, filtered by what the person typed (htmx)."""
    table = table_for(request, slug, Action.VIEW)
    field = table.fields.filter(key=key).first()
    target = linked_table(request.user, field) if field else None
    if target is None:
        raise Http404("No table to look up.")
    target_fields = reads.fields_of(target)
    selected = request.GET.get("selected", "")
    found = reference_matches(target, request.GET.get("q", ""))
    if selected.isdecimal() and all(str(r.pk) != selected for r in found):
        found = list(target.records.filter(pk=int(selected))) + found
    options = [(str(r.pk), record_label(r, target_fields, target.display_field)) for r in found]
    return render(
        request,
        "zstorage/records/_reference_options.html",
        {"options": options, "selected": selected, "required": False},
    )


@require_GET
def record_detail(request: HttpRequest, slug: str, record_id: int) -> HttpResponse:
    table = table_for(request, slug, Action.VIEW)
    fields = reads.fields_of(table)
    record = _record(request, table, record_id)
    changes = list(
        table.changes.filter(record_id=record.pk)
        .select_related("actor")
        .order_by("-version", "-id")
    )
    seen = [record.data] + [
        {key: value for key, pair in change.changes.items() for value in list(pair)[:2]}
        for change in changes
        if isinstance(change.changes, dict)
    ]
    refs = reference_labels(request.user, fields, seen)
    values = [(fld, record.data.get(key), is_reference(fld)) for key, fld in fields.items()]
    children = []
    for child_field, found in reads.children(table, record.pk):
        if can(request.user, child_field.table, Action.VIEW):
            child_fields = reads.fields_of(child_field.table)
            rows = [
                (r, record_label(r, child_fields, child_field.table.display_field))
                for r in found.order_by("id")[:50]
            ]
            children.append((child_field, rows, found.count()))
    history = [(change, change_rows(change.changes, fields, refs.label)) for change in changes]
    return render(
        request,
        "zstorage/records/detail.html",
        {
            "table": table,
            "record": record,
            "fields": fields,
            "values": values,
            "refs": refs,
            "children": children,
            "history": history,
            "trace": record_timeline(table, record.pk),
            "admin": is_admin(request.user),
            "can": allowed_actions(request, table),
            "crumbs": _crumbs(table, (record_label(record, fields, table.display_field), None)),
        },
    )


@require_http_methods(["GET", "POST"])
def record_delete(request: HttpRequest, slug: str, record_id: int) -> HttpResponse:
    table = table_for(request, slug, Action.DELETE)
    fields = reads.fields_of(table)
    record = _record(request, table, record_id)
    label = record_label(record, fields, table.display_field)
    if request.method == "POST":
        version = request.POST.get("version", "")
        try:
            records.delete_record(
                table,
                record.pk,
                actor=request.user,
                expected_version=int(version) if version.isdecimal() else None,
            )
        except (RecordReferenced, VersionConflict) as exc:
            messages.error(request, exc.message)
            return redirect("backoffice:record", slug, record.pk)
        messages.success(request, f"Record {label} deleted.")
        return redirect("backoffice:records", slug)
    return render(
        request,
        "zstorage/records/delete.html",
        {
            "table": table,
            "record": record,
            "label": label,
            "crumbs": _crumbs(
                table,
                (label, reverse("backoffice:record", args=[slug, record.pk])),
                ("Delete", None),
            ),
        },
    )
