"""The alert rule form: a name, a condition kind with its parameters, a scope, who is told.

The parameter inputs come from the condition kinds (``alerts.conditions``): each kind's
``Param``s become number inputs named ``<kind>__<param>``, shown only for the chosen kind
(``data-for-types``, the queue form's switch in forms.js); without scripts every input shows and
only the chosen kind's are read. Whether the rule holds is ``alerts.services.check``'s call, and
its errors land under the inputs they concern (``apply``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms

from alerts.conditions import Scope, condition, conditions
from alerts.errors import UnknownCondition
from alerts.models import AlertRule
from alerts.services import split_emails
from backoffice.forms.errors import ErrorSummary
from backoffice.forms.schema import apply_errors
from jobs.registry import registry as job_registry
from queues.models import Queue
from workers.models import WebhookEndpoint


def param_input(kind: str, name: str) -> str:
    return f"{kind}__{name}"


class AlertRuleForm(ErrorSummary):
    name = forms.CharField(max_length=120, help_text="How the alert and its messages are titled.")
    kind = forms.ChoiceField(
        label="Condition",
        widget=forms.Select(attrs={"data-type-switch": ""}),
        help_text="The form shows the settings this condition takes.",
    )
    queue = forms.ModelChoiceField(
        queryset=Queue.objects.order_by("name"),
        required=False,
        empty_label="Every enabled queue",
        help_text="Only this queue.",
    )
    job = forms.CharField(
        max_length=200,
        required=False,
        help_text="Only this job (blank: every job).",
        widget=forms.TextInput(attrs={"list": "job-names", "autocomplete": "off"}),
    )
    notify_emails = forms.CharField(
        required=False,
        max_length=5000,
        label="Email addresses",
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
        help_text="Told when an alert opens, again after the quiet period, and when it "
        "resolves; separated by commas or lines.",
    )
    webhook = forms.ModelChoiceField(
        queryset=WebhookEndpoint.objects.filter(enabled=True).order_by("name"),
        required=False,
        empty_label="No webhook",
        label="Webhook endpoint",
        help_text="Gets a signed JSON POST at the same times (see the Webhooks page).",
    )
    quiet_minutes = forms.IntegerField(
        min_value=0,
        max_value=525_600,
        initial=60,
        label="Quiet period (minutes)",
        help_text="While an alert stays open, tell again after this long; 0: only once.",
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args: Any, rule: AlertRule | None = None, **kwargs: Any) -> None:
        self.rule = rule
        if rule is not None:
            initial: dict[str, Any] = {
                "name": rule.name,
                "kind": rule.kind,
                "queue": rule.queue_id,
                "job": rule.job,
                "notify_emails": ", ".join(rule.notify_emails or []),
                "webhook": rule.webhook_id,
                "quiet_minutes": rule.quiet_minutes,
                "enabled": rule.enabled,
            }
            for name, value in (rule.params or {}).items():
                initial[param_input(rule.kind, name)] = value
            kwargs.setdefault("initial", initial)
        super().__init__(*args, **kwargs)
        kinds = [k for k in conditions() if k.available() or (rule and rule.kind == k.key)]
        self.kinds = kinds
        kind_field = self.fields["kind"]
        assert isinstance(kind_field, forms.ChoiceField)
        kind_field.choices = [(k.key, k.label) for k in kinds]
        for kind in kinds:
            for param in kind.params:
                attrs = {"min": f"{param.minimum:g}", "max": f"{param.maximum:g}"}
                attrs["step"] = "1" if param.integer else "any"
                self.fields[param_input(kind.key, param.name)] = forms.CharField(
                    required=False,
                    label=param.label,
                    initial=f"{param.default:g}",
                    help_text=param.help,
                    widget=forms.NumberInput(attrs=attrs),
                )
        self.job_names = sorted(d.name for d in job_registry.all())

    @property
    def types_for(self) -> dict[str, str]:
        """For each input, the condition kinds it applies to (``data-for-types``)."""
        every = " ".join(k.key for k in self.kinds)
        shown = {name: every for name in self.fields}
        shown["queue"] = " ".join(k.key for k in self.kinds if k.scope is Scope.QUEUE)
        shown["job"] = " ".join(k.key for k in self.kinds if k.scope is Scope.JOB)
        for kind in self.kinds:
            for param in kind.params:
                shown[param_input(kind.key, param.name)] = kind.key
        return shown

    def param_fields(self) -> list[tuple[str, forms.BoundField]]:
        """Every parameter input with the kind it belongs to, in the form's order."""
        return [
            (kind.key, self[param_input(kind.key, param.name)])
            for kind in self.kinds
            for param in kind.params
        ]

    def values(self) -> dict[str, Any]:
        """The rule's fields as ``alerts.services.save_rule`` takes them."""
        data = self.cleaned_data
        kind = data["kind"]
        try:
            chosen = condition(kind)
        except UnknownCondition:
            chosen = None
        params = {}
        if chosen is not None:
            params = {p.name: data.get(param_input(kind, p.name)) for p in chosen.params}
        scope = chosen.scope if chosen is not None else Scope.NONE
        return {
            "name": data["name"],
            "kind": kind,
            "params": params,
            "queue": data.get("queue") if scope is Scope.QUEUE else None,
            "job": (data.get("job") or "") if scope is Scope.JOB else "",
            "notify_emails": split_emails(data.get("notify_emails") or ""),
            "webhook": data.get("webhook"),
            "quiet_minutes": data["quiet_minutes"],
            "enabled": bool(data.get("enabled")),
        }

    def apply(self, errors: Mapping[str, list[str]]) -> None:
        kind = self.data.get("kind", "")
        rename = {}
        chosen = next((k for k in self.kinds if k.key == kind), None)
        if chosen is not None:
            rename = {p.name: param_input(kind, p.name) for p in chosen.params}
        apply_errors(self, errors, rename=rename)
