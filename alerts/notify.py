"""Telling people about an alert: an email to the rule's addresses and a signed POST to its
webhook endpoint, each recorded in the alert's history.

A channel that fails (SMTP refuses, the endpoint does not answer or its address is refused)
is an ``AlertEvent`` "notification failed" with the reason — never an exception out of here:
one broken mail server must not stop the evaluator from resolving other alerts. A failed
notification is tried again with the next re-notification (after the rule's quiet period).

The webhook POST is the webhook handler's (``workers.endpoints.deliver``): the same address
check after DNS (public addresses or ``QUAYMASTER_WEBHOOK_ALLOWED_NETWORKS`` only), timeout,
and ``X-Quaymaster-Signature: sha256=<HMAC of the body>`` with the endpoint's secret.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.mail import get_connection, send_mail
from django.urls import NoReverseMatch, reverse

from alerts.errors import NotificationFailed
from alerts.models import Alert, AlertEvent, EventKind
from workers.endpoints import deliver

logger = logging.getLogger("alerts.notify")

#: The longest one channel may take (a pause's notifications go out inside a worker's thread,
#: a resume's inside the admin's request).
CHANNEL_TIMEOUT = 10

#: What a notification is about.
OPENED, REPEATED, RESOLVED = "opened", "renotified", "resolved"
HEADLINES = {OPENED: "Alert", REPEATED: "Still open", RESOLVED: "Resolved"}


def alert_path(alert: Alert) -> str:
    try:
        return reverse("operations:alert", args=[alert.pk])
    except NoReverseMatch:
        return ""


def payload(alert: Alert, occasion: str) -> dict[str, Any]:
    """The webhook body (and what the email says, in words)."""
    rule = alert.rule
    return {
        "event": occasion,
        "alert": alert.pk,
        "state": alert.state,
        "rule": rule.name,
        "kind": rule.kind,
        "subject": alert.subject_label,
        "value": alert.value,
        "summary": alert.summary,
        "opened_at": alert.opened_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        "path": alert_path(alert),
    }


def channels(alert: Alert) -> list[str]:
    rule = alert.rule
    found = ["email"] if rule.notify_emails else []
    if rule.webhook is not None and rule.webhook.enabled:
        found.append("webhook")
    return found


def notify(alert: Alert, occasion: str, now: datetime) -> bool:
    """Send on every channel of the alert's rule and record each outcome; False when the rule
    has no channel (nothing was attempted)."""
    names = channels(alert)
    if not names:
        return False
    body = payload(alert, occasion)
    kind = EventKind.RENOTIFIED if occasion == REPEATED else EventKind.NOTIFIED
    for name in names:
        try:
            detail = _send(alert, name, occasion, body)
        except NotificationFailed as exc:
            logger.warning("Alert %s: %s notification failed: %s", alert.pk, name, exc.reason)
            AlertEvent.objects.create(
                alert=alert,
                kind=EventKind.NOTIFICATION_FAILED,
                channel=name,
                detail=f"{occasion}: {exc.reason}"[:2000],
                at=now,
            )
        else:
            AlertEvent.objects.create(alert=alert, kind=kind, channel=name, detail=detail, at=now)
    alert.last_notified_at = now
    alert.notifications += 1
    alert.save(update_fields=["last_notified_at", "notifications"])
    return True


def _send(alert: Alert, channel: str, occasion: str, body: dict[str, Any]) -> str:
    rule = alert.rule
    try:
        if channel == "email":
            recipients = list(rule.notify_emails)
            subject = f"[Quaymaster] {HEADLINES[occasion]}: {rule.name} — {alert.subject_label}"
            send_mail(
                subject[:250],
                _text(alert, occasion),
                settings.DEFAULT_FROM_EMAIL,
                recipients,
                connection=get_connection(timeout=CHANNEL_TIMEOUT),
            )
            return f"{occasion}: email to {', '.join(recipients)}"
        endpoint = rule.webhook
        assert endpoint is not None
        endpoint.timeout = min(int(endpoint.timeout), CHANNEL_TIMEOUT)  # this send only
        answer = deliver(endpoint, body, message_id=f"alert-{alert.pk}-{alert.notifications + 1}")
        return f"{occasion}: {endpoint.name} answered {answer.status} {answer.reason}".rstrip()
    except NotificationFailed:
        raise
    except Exception as exc:  # whatever the mail server or the endpoint did
        raise NotificationFailed(channel, str(exc) or type(exc).__name__) from exc


def _text(alert: Alert, occasion: str) -> str:
    lines = [
        f"{HEADLINES[occasion]}: {alert.rule.name}",
        "",
        alert.summary,
        "",
        f"Subject: {alert.subject_label}",
        f"Opened:  {alert.opened_at:%Y-%m-%d %H:%M:%S %Z}",
    ]
    if alert.resolved_at is not None:
        lines.append(f"Resolved: {alert.resolved_at:%Y-%m-%d %H:%M:%S %Z}")
    path = alert_path(alert)
    if path:
        lines += ["", f"History: {path} (on the back-office)"]
    return "\n".join(lines) + "\n"
