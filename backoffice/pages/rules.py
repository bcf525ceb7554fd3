"""The validation rules editor: list, add (with the inputs of the chosen kind) and delete.

Each rule's message is what a person sees next to the field when a record breaks it, in the
pages and in the API alike.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from backoffice.access import admin_required, get_for
from backoffice.forms.schema import FIELD_RULE_KINDS, RULE_PARAM_INPUTS, RuleForm, apply_errors
from backoffice.pages.tables import table_context
from zstorage import schema
from zstorage.errors import SchemaChangeRefused
from zstorage.models import Rule, Table
from zstorage.schema import SchemaInvalid


@admin_required
@require_http_methods(["GET", "POST"])
def rule_list(request: HttpRequest, slug: str) -> HttpResponse:
    table = get_for(request, Table, slug=slug)
    form = RuleForm(request.POST or None, table=table)
    if request.method == "POST" and form.is_valid():
        kind = form.cleaned_data["kind"]
        try:
            schema.add_rule(
                table,
                kind,
                form.cleaned_data["message"],
                field=form.target_field(),
                params=form.params(),
            )
        except SchemaInvalid as exc:
            params_input = RULE_PARAM_INPUTS.get(kind, [""])[0]
            apply_errors(form, exc.errors, rename={"params": params_input})
        except SchemaChangeRefused as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "Rule added.")
            return redirect("backoffice:rules", table.slug)
    context = table_context(
        table,
        "rules",
        form=form,
        rules=table.rules.select_related("field"),
        field_kinds=FIELD_RULE_KINDS,
    )
    return render(
        request, "zstorage/tables/rules.html", context, status=422 if form.errors else 200
    )


PARAM_INPUTS = [
    "kind",
    "field",
    "value",
    "length",
    "pattern",
    "values",
    "expression",
    "error_field",
]


@admin_required
@require_GET
def rule_params(request: HttpRequest, slug: str) -> HttpResponse:
    """The inputs for one kind of rule, swapped in by htmx when the kind select changes; what
    was already typed or chosen in them (htmx sends it along) stays."""
    table = get_for(request, Table, slug=slug)
    initial: dict[str, object] = {name: request.GET.get(name, "") for name in PARAM_INPUTS}
    initial["together"] = request.GET.getlist("together")
    form = RuleForm(initial=initial, table=table)
    return render(
        request,
        "zstorage/tables/_rule_params.html",
        {"form": form, "field_kinds": FIELD_RULE_KINDS},
    )


@admin_required
@require_POST
def rule_delete(request: HttpRequest, slug: str, rule_id: int) -> HttpResponse:
    rule = get_for(request, Rule, table__slug=slug, pk=rule_id)
    schema.delete_rule(rule)
    messages.success(request, f"Rule “{rule.message}” deleted.")
    return redirect("backoffice:rules", slug)
