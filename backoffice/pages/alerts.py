"""Admin pages for alerts: open alerts and the rules (one page), a rule's form (create, edit,
delete), an alert with its history, and the dashboard's count of open alerts.

Rules are saved through ``alerts.services`` (which checks them with their condition kind);
alerts are opened and resolved by the evaluator only (``alerts.evaluator``) — or, for a paused
queue, by its resume on the queue's page.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.roles import is_admin
from alerts import services
from alerts.conditions import condition, conditions
from alerts.errors import InvalidRule, UnknownCondition
from alerts.models import Alert, AlertRule, AlertState
from backoffice.access import admin_required, get_for
from backoffice.dashboard import Panel, register_panel
from backoffice.forms.alerts import AlertRuleForm

LIST = ("Alerts", "operations:alerts")
RECENTLY_RESOLVED = 20


def _crumbs(*more: tuple[str, str | None]) -> list[tuple[str, str | None]]:
    return [(LIST[0], reverse(LIST[1])), *more]


def describe(rule: AlertRule) -> str:
    try:
        return condition(rule.kind).describe(rule)
    except UnknownCondition:
        return f"Unknown condition {rule.kind!r}"


@admin_required
@require_GET
def alert_list(request: HttpRequest) -> HttpResponse:
    alerts = Alert.objects.select_related("rule")
    rules = list(AlertRule.objects.select_related("queue", "webhook"))
    context = {
        "open": list(alerts.filter(state=AlertState.OPEN)),
        "resolved": list(alerts.filter(state=AlertState.RESOLVED)[:RECENTLY_RESOLVED]),
        "rules": [(rule, describe(rule)) for rule in rules],
        "crumbs": [(LIST[0], None)],
    }
    return render(request, "alerts/list.html", context)


@admin_required
@require_http_methods(["GET", "POST"])
def rule_create(request: HttpRequest) -> HttpResponse:
    form = AlertRuleForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            rule = services.save_rule(None, **form.values())
        except InvalidRule as exc:
            form.apply(exc.errors)
        else:
            messages.success(request, f"Alert rule {rule.name} created.")
            return redirect("operations:alerts")
    return _form_page(request, form, None, status=422 if form.errors else 200)


@admin_required
@require_http_methods(["GET", "POST"])
def rule_edit(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = get_for(request, AlertRule, pk=rule_id)
    form = AlertRuleForm(request.POST or None, rule=rule)
    if request.method == "POST" and form.is_valid():
        try:
            services.save_rule(rule, **form.values())
        except InvalidRule as exc:
            form.apply(exc.errors)
            rule.refresh_from_db()
        else:
            messages.success(request, f"Alert rule {rule.name} saved.")
            return redirect("operations:alerts")
    return _form_page(request, form, rule, status=422 if form.errors else 200)


def _form_page(
    request: HttpRequest, form: AlertRuleForm, rule: AlertRule | None, *, status: int
) -> HttpResponse:
    context: dict[str, Any] = {
        "form": form,
        "rule": rule,
        "kinds": form.kinds,
        "crumbs": _crumbs((rule.name if rule else "New rule", None)),
    }
    return render(request, "alerts/rule_form.html", context, status=status)


@admin_required
@require_POST
def rule_delete(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = get_for(request, AlertRule, pk=rule_id)
    name = rule.name
    services.delete_rule(rule)
    messages.success(request, f"Alert rule {name} deleted, with its alerts.")
    return redirect("operations:alerts")


@admin_required
@require_GET
def alert_detail(request: HttpRequest, alert_id: int) -> HttpResponse:
    alert = get_for(request, Alert.objects.select_related("rule"), pk=alert_id)
    context = {
        "alert": alert,
        "rule_text": describe(alert.rule),
        "events": list(alert.events.all()),
        "crumbs": _crumbs((f"{alert.rule.name}: {alert.subject_label}", None)),
    }
    return render(request, "alerts/detail.html", context)


@register_panel
def alerts_panel(request: HttpRequest) -> Panel | None:
    """How many alerts are open, and the latest of them: for admins."""
    if not is_admin(request.user):
        return None
    try:
        url = reverse(LIST[1])
    except NoReverseMatch:
        return None
    open_alerts = Alert.objects.filter(state=AlertState.OPEN).select_related("rule")
    context = {
        "count": open_alerts.count(),
        "latest": list(open_alerts[:5]),
        "url": url,
        "rules": AlertRule.objects.filter(enabled=True).count(),
        "kinds": len(conditions()),
    }
    return Panel("Alerts", "alerts/_dashboard.html", context)
