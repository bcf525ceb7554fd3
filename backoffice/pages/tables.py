"""Admin pages for tables: the list, create, settings, delete and group permissions.

Every change goes through ``zstorage.schema``; a refusal (``SchemaChangeRefused``) is shown
as the service words it, because it says what to do next.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.models import Group
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods

from accounts.roles import Role
from backoffice.access import admin_required, get_for
from backoffice.forms.schema import TableForm, apply_errors
from backoffice.grants import GRANT_ACTIONS, grant_rows, save_grants
from zstorage import schema
from zstorage.errors import SchemaChangeRefused
from zstorage.models import Table
from zstorage.schema import SchemaInvalid

TABS = [
    ("settings", "Settings", "backoffice:table"),
    ("fields", "Fields", "backoffice:fields"),
    ("rules", "Rules", "backoffice:rules"),
    ("permissions", "Permissions", "backoffice:grants"),
    ("records", "Records", "backoffice:records"),
]


def table_context(table: Table, tab: str, **extra: Any) -> dict[str, Any]:
    """What every admin page of one table shares: breadcrumbs and the tabs."""
    tab_label = next(label for name, label, _ in TABS if name == tab)
    return {
        "table": table,
        "tab": tab,
        "tabs": [(name, label, reverse(url, args=[table.slug])) for name, label, url in TABS],
        "crumbs": [
            ("Tables", reverse("backoffice:tables")),
            (table.name, reverse("backoffice:table", args=[table.slug])),
            (tab_label, None),
        ],
        **extra,
    }


@admin_required
def table_list(request: HttpRequest) -> HttpResponse:
    tables = Table.objects.annotate(
        field_count=Count("fields", distinct=True), record_count=Count("records", distinct=True)
    )
    return render(
        request,
        "zstorage/tables/list.html",
        {"tables": tables, "crumbs": [("Tables", None)]},
    )


@admin_required
@require_http_methods(["GET", "POST"])
def table_create(request: HttpRequest) -> HttpResponse:
    form = TableForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            table = schema.create_table(**form.cleaned_data)
        except SchemaInvalid as exc:
            apply_errors(form, exc.errors)
        else:
            messages.success(request, f"Table {table.name} created. Now add its fields.")
            return redirect("backoffice:fields", table.slug)
    return render(
        request,
        "zstorage/tables/form.html",
        {
            "form": form,
            "crumbs": [("Tables", reverse("backoffice:tables")), ("New table", None)],
        },
        status=422 if form.errors else 200,
    )


@admin_required
@require_http_methods(["GET", "POST"])
def table_settings(request: HttpRequest, slug: str) -> HttpResponse:
    table = get_for(request, Table, slug=slug)
    form = TableForm.for_table(table, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            schema.update_table(table, **form.cleaned_data)
        except SchemaInvalid as exc:
            apply_errors(form, exc.errors)
        except SchemaChangeRefused as exc:
            form.add_error("slug", exc.message)
        else:
            messages.success(request, "Table saved.")
            return redirect("backoffice:table", table.slug)
        table.refresh_from_db()
    context = table_context(
        table,
        "settings",
        form=form,
        record_count=table.records.count(),
        field_count=table.fields.count(),
    )
    return render(
        request, "zstorage/tables/settings.html", context, status=422 if form.errors else 200
    )


@admin_required
@require_http_methods(["GET", "POST"])
def table_delete(request: HttpRequest, slug: str) -> HttpResponse:
    table = get_for(request, Table, slug=slug)
    count = table.records.count()
    if request.method == "POST":
        try:
            schema.delete_table(table, confirm=request.POST.get("confirm") == "yes")
        except SchemaChangeRefused as exc:
            messages.error(request, exc.message)
        else:
            records = ngettext("its %d record", "its %d records", count) % count
            messages.success(request, f"Table {table.name} deleted with {records}.")
            return redirect("backoffice:tables")
    context = table_context(table, "settings", record_count=count)
    context["crumbs"][-1] = ("Delete", None)
    return render(request, "zstorage/tables/delete.html", context)


@admin_required
@require_http_methods(["GET", "POST"])
def table_grants(request: HttpRequest, slug: str) -> HttpResponse:
    """Which groups may view, add, change and delete this table's records."""
    table = get_for(request, Table, slug=slug)
    groups = Group.objects.exclude(name=Role.ADMINS).order_by("name")
    if request.method == "POST":
        save_grants(table, groups, request.POST)
        messages.success(request, "Permissions saved.")
        return redirect("backoffice:grants", table.slug)
    context = table_context(
        table, "permissions", rows=grant_rows(table, groups), actions=GRANT_ACTIONS
    )
    return render(request, "zstorage/tables/grants.html", context)
