"""Saving and deleting alert rules: the one path the back-office (and anything else) takes.

A rule is checked as a whole (``InvalidRule`` with every problem at once, keyed by input): its
kind must be registered, its parameters are the kind's to check, a scope must suit the kind,
each address must be an email address. Disabling a rule, or changing what it measures,
resolves its open alerts (they were about the old rule); deleting it deletes its alerts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from alerts.conditions import Scope, condition
from alerts.errors import InvalidRule, UnknownCondition
from alerts.evaluator import resolve
from alerts.models import AlertRule, AlertState
from audit import trail
from queues.models import Queue
from workers.models import WebhookEndpoint

MAX_EMAILS = 20
#: What the audit trail keeps of a rule.
AUDITED = (
    "name",
    "kind",
    "params",
    "queue",
    "job",
    "notify_emails",
    "webhook",
    "quiet_minutes",
    "enabled",
)
#: Fields whose change makes the rule measure something else.
MEASURED = ("kind", "params", "queue_id", "job")


def split_emails(text: str) -> list[str]:
    return [
        part.strip()
        for part in text.replace(";", ",").replace("\n", ",").split(",")
        if part.strip()
    ]


def check(
    *,
    name: str,
    kind: str,
    params: Mapping[str, Any],
    queue: Queue | None,
    job: str,
    notify_emails: Iterable[str],
    quiet_minutes: int,
) -> dict[str, Any]:
    """The rule's cleaned fields, or InvalidRule with every problem."""
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {"params": {}}
    try:
        kind_ = condition(kind)
    except UnknownCondition as exc:
        errors["kind"] = [str(exc)]
        kind_ = None
    if kind_ is not None:
        try:
            cleaned["params"] = kind_.clean_params(params)
        except InvalidRule as exc:
            errors.update(exc.errors)
        if queue is not None and kind_.scope is not Scope.QUEUE:
            errors.setdefault("queue", []).append(f"“{kind_.label}” is not about one queue.")
        if job and kind_.scope is not Scope.JOB:
            errors.setdefault("job", []).append(f"“{kind_.label}” is not about one job.")
    if not name.strip():
        errors["name"] = ["Give the rule a name."]
    emails = list(notify_emails)
    bad = []
    for email in emails:
        try:
            validate_email(email)
        except ValidationError:
            bad.append(email)
    if bad:
        errors["notify_emails"] = [f"Not an email address: {bad[0][:100]}."]
    elif len(emails) > MAX_EMAILS:
        errors["notify_emails"] = [f"At most {MAX_EMAILS} addresses."]
    if not 0 <= quiet_minutes <= 525_600:
        errors["quiet_minutes"] = ["Enter 0 (never again) to 525600 minutes (a year)."]
    if errors:
        raise InvalidRule(errors)
    cleaned.update(
        name=name.strip(),
        kind=kind,
        queue=queue,
        job=job.strip(),
        notify_emails=sorted(set(emails), key=emails.index),
        quiet_minutes=quiet_minutes,
    )
    return cleaned


def save_rule(
    rule: AlertRule | None,
    *,
    webhook: WebhookEndpoint | None = None,
    enabled: bool = True,
    **fields: Any,
) -> AlertRule:
    """Create (``rule`` None) or change a rule; InvalidRule (nothing saved) if it does not hold."""
    cleaned = check(**fields)
    taken = AlertRule.objects.filter(name=cleaned["name"])
    if rule is not None:
        taken = taken.exclude(pk=rule.pk)
    if taken.exists():
        raise InvalidRule({"name": ["A rule with this name exists already."]})
    target = rule or AlertRule()
    before = {name: getattr(target, name) for name in MEASURED} if rule else None
    audited_before = trail.snapshot(target, AUDITED) if rule else None
    for name, value in {**cleaned, "webhook": webhook, "enabled": enabled}.items():
        setattr(target, name, value)
    with transaction.atomic():
        target.save()
        action = "alert_rule.change" if rule else "alert_rule.create"
        trail.record(action, target, before=audited_before, after=trail.snapshot(target, AUDITED))
        after = {name: getattr(target, name) for name in MEASURED}
        if rule is not None and (not enabled or before != after):
            why = "The rule was disabled." if not enabled else "The rule was changed."
            close_alerts(target, why)
    return target


def close_alerts(rule: AlertRule, why: str) -> int:
    now = timezone.now()
    count = 0
    for alert in rule.alerts.filter(state=AlertState.OPEN):
        alert.rule = rule
        count += resolve(alert, now, why)
    return count


def delete_rule(rule: AlertRule) -> None:
    with transaction.atomic():
        trail.record("alert_rule.delete", rule, before=trail.snapshot(rule, AUDITED))
        rule.delete()
