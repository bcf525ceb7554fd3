"""The evaluator opens an alert once, notifies once (email and a signed webhook to a real local
HTTP server), re-notifies after the quiet period, resolves it when the condition holds again,
and records every step in the alert's history."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from alerts import evaluator, housekeeping, lease
from alerts.models import Alert, AlertState, EventKind
from alerts.services import save_rule
from queues import services
from queues.models import DatabaseMessage, MessageState, Queue
from tests.workers.webhook_receiver import serve
from workers.endpoints import create_endpoint, sign

pytestmark = pytest.mark.django_db

SECRET = "alert-signing-secret"


def dead_letter(queue: Queue) -> DatabaseMessage:
    return DatabaseMessage.objects.create(
        queue=queue,
        message_id=uuid.uuid4(),
        body={"handler": "log"},
        state=MessageState.DEAD,
        available_at=timezone.now(),
    )


def rule_for(queue: Queue, **extra: Any) -> Any:
    fields = {
        "name": "Dead letters on orders",
        "kind": "dead_letters",
        "params": {"threshold": 0},
        "queue": queue,
        "job": "",
        "notify_emails": ["ops@example.com"],
        "quiet_minutes": 60,
        **extra,
    }
    return save_rule(None, **fields)


def history(alert: Alert) -> list[tuple[str, str]]:
    return [(e.kind, e.channel) for e in alert.events.all()]


def test_an_alert_opens_notifies_once_renotifies_after_quiet_and_resolves(settings: Any) -> None:
    settings.QUAYMASTER_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    queue = services.create_queue(name="orders", type="database")
    with serve() as receiver:
        endpoint = create_endpoint(name="pager", url=receiver.url, secret=SECRET)
        rule = rule_for(queue, webhook=endpoint)
        assert "0 opened, 0 re-notified, 0 resolved" in str(evaluator.evaluate())

        message = dead_letter(queue)
        now = timezone.now()
        first = evaluator.evaluate(now)
        assert len(first.opened) == 1
        alert = Alert.objects.get(rule=rule)
        assert alert.state == AlertState.OPEN
        assert alert.value == 1
        assert alert.summary == "1 dead letters on queue orders (more than 0)."
        assert len(mail.outbox) == 1
        assert mail.outbox[0].to == ["ops@example.com"]
        assert "Dead letters on orders" in mail.outbox[0].subject
        ((headers, body),) = receiver.requests
        assert headers["X-Quaymaster-Signature"] == sign(SECRET, body)
        sent = json.loads(body)
        assert sent["event"] == "opened"
        assert sent["rule"] == rule.name
        assert sent["value"] == 1

        # Still in breach within the quiet period: nothing more is sent, nothing reopens.
        evaluator.evaluate(now + timedelta(minutes=5))
        assert len(mail.outbox) == 1
        assert len(receiver.requests) == 1
        assert Alert.objects.filter(rule=rule).count() == 1

        # After the quiet period: told again.
        again = evaluator.evaluate(now + timedelta(minutes=61))
        assert [a.pk for a in again.renotified] == [alert.pk]
        assert len(mail.outbox) == 2
        assert json.loads(receiver.requests[1][1])["event"] == ("renotified")

        message.delete()
        done = evaluator.evaluate(now + timedelta(minutes=62))
        assert [a.pk for a in done.resolved] == [alert.pk]
        alert.refresh_from_db()
        assert alert.state == AlertState.RESOLVED
        assert alert.resolved_at is not None
        assert "Resolved" in mail.outbox[2].subject
        assert json.loads(receiver.requests[2][1])["state"] == "resolved"
    assert history(alert) == [
        (EventKind.OPENED, ""),
        (EventKind.NOTIFIED, "email"),
        (EventKind.NOTIFIED, "webhook"),
        (EventKind.RENOTIFIED, "email"),
        (EventKind.RENOTIFIED, "webhook"),
        (EventKind.RESOLVED, ""),
        (EventKind.NOTIFIED, "email"),
        (EventKind.NOTIFIED, "webhook"),
    ]

    # A new breach opens a new alert.
    dead_letter(queue)
    evaluator.evaluate(now + timedelta(minutes=63))
    assert Alert.objects.filter(rule=rule, state=AlertState.OPEN).count() == 1
    assert Alert.objects.filter(rule=rule).count() == 2


def test_a_failing_channel_is_recorded_and_the_others_still_go_out() -> None:
    queue = services.create_queue(name="orders", type="database")
    with serve() as receiver:  # loopback, not allowed: the SSRF filter refuses it
        endpoint = create_endpoint(name="local", url=receiver.url)
        rule = rule_for(queue, webhook=endpoint)
        dead_letter(queue)
        evaluator.evaluate()
    assert receiver.requests == []
    alert = Alert.objects.get(rule=rule)
    failed = alert.events.get(kind=EventKind.NOTIFICATION_FAILED)
    assert failed.channel == "webhook"
    assert "loopback" in failed.detail
    assert alert.events.filter(kind=EventKind.NOTIFIED, channel="email").exists()
    assert len(mail.outbox) == 1


def test_one_evaluator_at_a_time() -> None:
    queue = services.create_queue(name="orders", type="database")
    rule_for(queue)
    dead_letter(queue)
    assert lease.acquire("elsewhere", timedelta(minutes=1))
    skipped = evaluator.evaluate()
    assert not skipped.evaluated
    assert not Alert.objects.exists()
    with pytest.raises(CommandError, match="holds the lease"):
        call_command("evaluate_alerts", "--once")
    lease.release("elsewhere")
    call_command("evaluate_alerts", "--once")
    assert Alert.objects.filter(state=AlertState.OPEN).count() == 1
    assert lease.holder() == ""  # a one-off pass gives the lease back


def test_housekeeping_deletes_old_resolved_alerts_only(settings: Any) -> None:
    settings.QUAYMASTER_ALERT_RETENTION_DAYS = 30
    queue = services.create_queue(name="orders", type="database")
    rule = rule_for(queue)
    message = dead_letter(queue)
    long_ago = timezone.now() - timedelta(days=40)
    evaluator.evaluate(long_ago)
    message.delete()
    evaluator.evaluate(long_ago + timedelta(minutes=1))
    dead_letter(queue)
    evaluator.evaluate(long_ago + timedelta(minutes=2))  # open since 40 days: kept
    assert housekeeping.prune() == 1
    assert [a.state for a in Alert.objects.filter(rule=rule)] == [AlertState.OPEN]
