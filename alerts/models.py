"""Alert rules, the alerts they open, each alert's history, and the evaluator's lease.

A rule names a condition kind (``alerts.conditions``: the kind owns its parameters and how it
is measured) with its parameters, an optional scope (one queue, one job), who is told (email
addresses, a webhook endpoint) and how long to stay quiet before telling again.

An alert is one rule breached by one subject (a queue, a job, the outbox): it is ``open`` until
the condition holds again, then ``resolved``; the next breach opens a new alert. At most one
alert per rule and subject is open at a time — a partial unique constraint, so two evaluators
(or the evaluator and a queue's pause) can never open it twice. ``AlertEvent`` rows are its
history: opened, notified, re-notified, a notification that failed and why, resolved.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from queues.models import Queue
from workers.models import WebhookEndpoint


class AlertRule(models.Model):
    name = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=40, help_text="A condition kind (alerts.conditions).")
    params = models.JSONField(default=dict, blank=True)
    queue = models.ForeignKey(
        Queue,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="alert_rules",
        help_text="Only this queue (blank: every enabled queue), for the kinds about queues.",
    )
    job = models.CharField(
        max_length=200, blank=True, default="", help_text="Only this job (blank: every job)."
    )
    notify_emails = models.JSONField(default=list, blank=True)
    webhook = models.ForeignKey(
        WebhookEndpoint,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="alert_rules",
    )
    quiet_minutes = models.PositiveIntegerField(
        default=60, help_text="Tell again after this many minutes while the alert stays open."
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AlertState(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"


class Alert(models.Model):
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts")
    #: What breached the rule, as a key ("queue:12", "job:nightly", "outbox") and in words.
    subject = models.CharField(max_length=200)
    subject_label = models.CharField(max_length=200)
    state = models.CharField(max_length=10, choices=AlertState.choices, default=AlertState.OPEN)
    value = models.FloatField(null=True, blank=True)
    summary = models.CharField(max_length=500)
    opened_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    last_notified_at = models.DateTimeField(null=True, blank=True)
    notifications = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "subject"],
                condition=Q(state="open"),
                name="alerts_alert_one_open",
            )
        ]
        indexes = [models.Index(fields=["state", "opened_at"], name="alerts_alert_state")]

    def __str__(self) -> str:
        return f"{self.rule.name}: {self.subject_label} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state == AlertState.OPEN


class EventKind(models.TextChoices):
    OPENED = "opened", "Opened"
    NOTIFIED = "notified", "Notified"
    RENOTIFIED = "renotified", "Re-notified"
    NOTIFICATION_FAILED = "notification_failed", "Notification failed"
    RESOLVED = "resolved", "Resolved"


class AlertEvent(models.Model):
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=24, choices=EventKind.choices)
    #: "email" or "webhook" for notifications.
    channel = models.CharField(max_length=16, blank=True, default="")
    detail = models.TextField(blank=True, default="")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.alert_id} {self.kind}"


class EvaluatorLease(models.Model):
    """Who evaluates: one row, taken by an UPDATE when free, expired or already the taker's
    (works the same on PostgreSQL and SQLite); see ``alerts.lease``."""

    name = models.CharField(max_length=80, unique=True)
    owner = models.CharField(max_length=200, blank=True, default="")
    expires_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.name} ({self.owner or 'free'})"
