"""The evaluator: each enabled rule is measured, and its alerts opened, re-notified, resolved.

    no alert ──(breach)──► open ──(condition holds again)──► resolved
                  │          │ ▲
           notify (opened)   └─┘ still in breach: value updated; re-notify once the rule's
                                 quiet period has passed since the last notification

A pass (``evaluate``) runs under the evaluator lease (``alerts.lease``): the scheduler's beat
task every ``QUAYMASTER_ALERT_EVALUATE_SECONDS`` and ``manage.py evaluate_alerts`` may both
run, and only the holder evaluates. A rule whose measurement fails (a bug, a database error)
is logged and skipped; the others go on. Notifications never raise (``alerts.notify``).

``evaluate_kind`` measures the rules of one kind at once, outside the lease: the queue pause
signal uses it, so its alert opens (and notifies) as the queue pauses, and resolves as an
admin resumes it. The partial unique constraint on open alerts keeps that and a concurrent
pass from opening one alert twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from alerts import lease
from alerts.conditions import Breach, Reading, condition
from alerts.errors import UnknownCondition
from alerts.models import Alert, AlertEvent, AlertRule, AlertState, EventKind
from alerts.notify import OPENED, REPEATED, RESOLVED, notify

logger = logging.getLogger("alerts.evaluator")


@dataclass
class Outcome:
    """What a pass did (``manage.py evaluate_alerts`` prints it)."""

    evaluated: bool = True
    rules: int = 0
    opened: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)
    renotified: list[Alert] = field(default_factory=list)
    failed_rules: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if not self.evaluated:
            return "another evaluator holds the lease: skipped"
        text = (
            f"{self.rules} rules: {len(self.opened)} opened, {len(self.renotified)} re-notified, "
            f"{len(self.resolved)} resolved"
        )
        if self.failed_rules:
            text += f"; could not measure: {', '.join(self.failed_rules)}"
        return text


def evaluate(
    now: datetime | None = None, *, owner: str | None = None, ttl: timedelta | None = None
) -> Outcome:
    """One pass over every enabled rule, if this process holds (or takes) the lease. Without
    ``owner`` the pass takes the lease for itself and gives it back at the end."""
    holder = owner or lease.new_owner()
    if not lease.acquire(holder, ttl or timedelta(minutes=5)):
        return Outcome(evaluated=False)
    try:
        return _evaluate(AlertRule.objects.filter(enabled=True), now or timezone.now())
    finally:
        if owner is None:
            lease.release(holder)


def evaluate_kind(kind: str, now: datetime | None = None) -> Outcome:
    """The enabled rules of one kind, now, without the lease (see the module's docstring)."""
    return _evaluate(AlertRule.objects.filter(enabled=True, kind=kind), now or timezone.now())


def _evaluate(rules: QuerySet[AlertRule], now: datetime) -> Outcome:
    outcome = Outcome()
    for rule in rules.select_related("queue", "webhook"):
        outcome.rules += 1
        try:
            reading = condition(rule.kind).observe(rule, now)
        except UnknownCondition:
            logger.warning("Alert rule %r names an unknown condition %r", rule.name, rule.kind)
            outcome.failed_rules.append(rule.name)
            continue
        except Exception:
            logger.exception("Alert rule %r could not be measured", rule.name)
            outcome.failed_rules.append(rule.name)
            continue
        apply(rule, reading, now, outcome)
    return outcome


def apply(rule: AlertRule, reading: Reading, now: datetime, outcome: Outcome) -> None:
    """Open, update, re-notify and resolve the rule's alerts after one reading."""
    still_open = {a.subject: a for a in rule.alerts.filter(state=AlertState.OPEN)}
    for breach in reading.breaches:
        alert = still_open.pop(breach.subject, None)
        if alert is None:
            opened = _open(rule, breach, now)
            if opened is not None:
                outcome.opened.append(opened)
                notify(opened, OPENED, now)
            continue
        alert.rule = rule
        if alert.value != breach.value or alert.summary != breach.summary[:500]:
            alert.value, alert.summary = breach.value, breach.summary[:500]
            alert.save(update_fields=["value", "summary"])
        quiet = timedelta(minutes=rule.quiet_minutes)
        last = alert.last_notified_at or alert.opened_at
        if rule.quiet_minutes and now - last >= quiet and notify(alert, REPEATED, now):
            outcome.renotified.append(alert)
    for subject, alert in still_open.items():
        if subject in reading.unknown:
            continue
        alert.rule = rule
        resolve(alert, now, "The condition holds again.")
        outcome.resolved.append(alert)


def _open(rule: AlertRule, breach: Breach, now: datetime) -> Alert | None:
    """A new open alert, or None when another process opened it a moment ago."""
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                rule=rule,
                subject=breach.subject,
                subject_label=breach.label[:200],
                value=breach.value,
                summary=breach.summary[:500],
                opened_at=now,
            )
            AlertEvent.objects.create(
                alert=alert, kind=EventKind.OPENED, detail=breach.summary[:2000], at=now
            )
    except IntegrityError:
        return None
    return alert


def resolve(alert: Alert, now: datetime, why: str) -> bool:
    """Resolve an open alert (once: False when it was resolved already) and say so."""
    changed = Alert.objects.filter(pk=alert.pk, state=AlertState.OPEN).update(
        state=AlertState.RESOLVED, resolved_at=now
    )
    if not changed:
        return False
    alert.state, alert.resolved_at = AlertState.RESOLVED, now
    AlertEvent.objects.create(alert=alert, kind=EventKind.RESOLVED, detail=why, at=now)
    notify(alert, RESOLVED, now)
    return True
