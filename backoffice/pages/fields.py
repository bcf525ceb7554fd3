"""The fields editor: add, edit (rename, retype, options), reorder and delete a table's fields.

A type change converts every stored value or is refused by ``schema.update_field`` with the
records in the way; the page shows that refusal as it is and keeps what the admin typed.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from backoffice.access import admin_required, get_for
from backoffice.forms.schema import FIELD_OPTION_INPUTS, FieldForm, apply_errors
from backoffice.pages.tables import table_context
from zstorage import schema
from zstorage.errors import SchemaChangeRefused
from zstorage.models import Field, Table
from zstorage.schema import SchemaInvalid


def _field_errors(form: FieldForm, exc: SchemaInvalid) -> None:
    option_input = FIELD_OPTION_INPUTS.get(form.cleaned_data.get("type", ""), "")
    apply_errors(form, exc.errors, rename={"options": option_input})


@admin_required
@require_http_methods(["GET", "POST"])
def field_list(request: HttpRequest, slug: str) -> HttpResponse:
    """The table's fields in order, and the form to add one."""
    table = get_for(request, Table, slug=slug)
    form = FieldForm(request.POST or None, table=table)
    if request.method == "POST" and form.is_valid():
        try:
            field = schema.add_field(table, **form.attrs())
        except SchemaInvalid as exc:
            _field_errors(form, exc)
        except SchemaChangeRefused as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Field {field.name} added.")
            return redirect("backoffice:fields", table.slug)
    context = table_context(table, "fields", form=form, fields=table.fields.all())
    return render(
        request, "zstorage/tables/fields.html", context, status=422 if form.errors else 200
    )


@admin_required
@require_GET
def field_options(request: HttpRequest, slug: str) -> HttpResponse:
    """The type-specific inputs, swapped in by htmx when the type select changes (keeping
    what was typed in them)."""
    get_for(request, Table, slug=slug)
    form = FieldForm(
        initial={
            name: request.GET.get(name, "") for name in ("type", "choices", "target", "places")
        }
    )
    return render(request, "zstorage/tables/_field_options.html", {"form": form})


@admin_required
@require_http_methods(["GET", "POST"])
def field_edit(request: HttpRequest, slug: str, key: str) -> HttpResponse:
    field = get_for(request, Field.objects.select_related("table"), table__slug=slug, key=key)
    table = field.table
    form = FieldForm.for_field(field, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            schema.update_field(field, **form.attrs())
        except SchemaInvalid as exc:
            _field_errors(form, exc)
        except SchemaChangeRefused as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Field {field.name} saved.")
            return redirect("backoffice:fields", table.slug)
        field.refresh_from_db()  # the service set the attributes before it refused
    context = table_context(table, "fields", form=form, field=field)
    context["crumbs"][-1:] = [
        ("Fields", reverse("backoffice:fields", args=[slug])),
        (field.name, None),
    ]
    return render(
        request, "zstorage/tables/field_edit.html", context, status=422 if form.errors else 200
    )


@admin_required
@require_POST
def field_move(request: HttpRequest, slug: str, key: str) -> HttpResponse:
    """Move a field one place up or down; the order is renumbered in steps of ten."""
    table = get_for(request, Table, slug=slug)
    fields = list(table.fields.all())
    index = next((i for i, f in enumerate(fields) if f.key == key), None)
    if index is None:
        return redirect("backoffice:fields", slug)
    other = index - 1 if request.POST.get("direction") == "up" else index + 1
    if 0 <= other < len(fields):
        fields[index], fields[other] = fields[other], fields[index]
        for position, field in enumerate(fields, start=1):
            if field.order != position * 10:
                schema.update_field(field, order=position * 10)
    return redirect(reverse("backoffice:fields", args=[slug]) + f"#field-{key}")


@admin_required
@require_http_methods(["GET", "POST"])
def field_delete(request: HttpRequest, slug: str, key: str) -> HttpResponse:
    """Deleting a field deletes its values: the page says how many records hold one."""
    field = get_for(request, Field.objects.select_related("table"), table__slug=slug, key=key)
    table = field.table
    if request.method == "POST":
        try:
            lost = schema.delete_field(field, confirm=request.POST.get("confirm") == "yes")
        except SchemaChangeRefused as exc:
            messages.error(request, exc.message)
        else:
            lost_values = (
                ngettext("%d record lost its value", "%d records lost their value", lost) % lost
            )
            messages.success(request, f"Field {field.name} deleted; {lost_values}.")
            return redirect("backoffice:fields", slug)
    holding = table.records.filter(**{f"data__{field.key}__isnull": False}).count()
    context = table_context(table, "fields", field=field, holding=holding)
    context["crumbs"][-1:] = [
        ("Fields", reverse("backoffice:fields", args=[slug])),
        (f"Delete {field.name}", None),
    ]
    return render(request, "zstorage/tables/field_delete.html", context)
