"""The Alerts pages: rules are written in a form whose inputs come from the condition kinds,
every mistake is a 422 with the reasons (never a 500), an alert's page tells its history, the
dashboard counts open alerts, and a paused queue's page says so and resumes it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from alerts import evaluator
from alerts.models import Alert, AlertRule, AlertState
from audit.models import AuditEvent
from queues import pausing, services
from queues.models import DatabaseMessage, MessageState, Queue
from workers.readiness import readiness

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client: Client) -> Client:
    user = User.objects.create_user("root")
    user.groups.add(Group.objects.get(name="admins"))
    client.force_login(user)
    return client


@pytest.fixture
def orders() -> Queue:
    return services.create_queue(name="orders", type="database")


def rule_post(queue: Queue, **extra: Any) -> dict[str, Any]:
    return {
        "name": "Dead letters on orders",
        "kind": "dead_letters",
        "dead_letters__threshold": "5",
        "queue": str(queue.pk),
        "notify_emails": "ops@example.com,\noncall@example.com",
        "quiet_minutes": "30",
        "enabled": "on",
        **extra,
    }


def test_an_admin_creates_edits_and_deletes_a_rule(admin: Client, orders: Queue) -> None:
    page = admin.get("/alerts/rules/new").content.decode()
    assert 'data-for-types="dead_letters"' in page
    assert "Handler error rate above X% over W minutes" in page

    answer = admin.post("/alerts/rules/new", rule_post(orders))
    assert answer.status_code == 302
    rule = AlertRule.objects.get(name="Dead letters on orders")
    assert rule.params == {"threshold": 5}
    assert rule.queue == orders
    assert rule.notify_emails == ["ops@example.com", "oncall@example.com"]
    listing = admin.get("/alerts/").content.decode()
    assert "More than 5 dead letters on queue orders" in listing

    edited = rule_post(orders, kind="error_rate", error_rate__percent="12.5", quiet_minutes="0")
    assert admin.post(f"/alerts/rules/{rule.pk}/", edited).status_code == 302
    rule.refresh_from_db()
    assert rule.kind == "error_rate"
    assert rule.params == {"percent": 12.5, "minutes": 5, "min_runs": 10}

    assert admin.post(f"/alerts/rules/{rule.pk}/delete").status_code == 302
    assert not AlertRule.objects.filter(pk=rule.pk).exists()
    trail = AuditEvent.objects.filter(action__startswith="alert_rule.").order_by("id")
    assert [(e.action, e.actor_name) for e in trail] == [
        ("alert_rule.create", "root"),
        ("alert_rule.change", "root"),
        ("alert_rule.delete", "root"),
    ]
    change = trail[1]
    assert change.before is not None
    assert change.after is not None
    assert (change.before["kind"], change.after["kind"]) == ("dead_letters", "error_rate")


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"dead_letters__threshold": "lots"}, "dead_letters__threshold", "Enter a number."),
        ({"dead_letters__threshold": "-1"}, "dead_letters__threshold", "from 0 to"),
        ({"notify_emails": "ops@example.com, not-an-address"}, "notify_emails", "Not an email"),
        ({"kind": "no_such_kind"}, "kind", "Select a valid choice"),
        ({"kind": "outbox_age", "job": "nightly"}, None, None),
        ({"name": ""}, "name", "required"),
        ({"quiet_minutes": "99999999"}, "quiet_minutes", "less than or equal"),
    ],
)
def test_mistakes_answer_422_with_the_reason(
    admin: Client, orders: Queue, change: dict[str, str], field: str | None, message: str | None
) -> None:
    answer = admin.post("/alerts/rules/new", rule_post(orders, **change))
    if (
        field is None or message is None
    ):  # a job given to a kind without one is ignored, not refused
        assert answer.status_code == 302
        assert AlertRule.objects.get(name="Dead letters on orders").job == ""
        return
    assert answer.status_code == 422
    errors = answer.context["form"].errors
    assert message in " ".join(errors[field])
    assert not AlertRule.objects.filter(name="Dead letters on orders").exists()


def test_a_taken_name_is_refused(admin: Client, orders: Queue) -> None:
    admin.post("/alerts/rules/new", rule_post(orders))
    answer = admin.post("/alerts/rules/new", rule_post(orders))
    assert answer.status_code == 422
    assert "exists already" in answer.content.decode()


def test_business_users_get_403(client: Client) -> None:
    client.force_login(User.objects.create_user("clerk"))
    for url in ("/alerts/", "/alerts/rules/new", "/alerts/rules/1/", "/alerts/1/"):
        assert client.get(url).status_code == 403, url


def test_an_alert_page_tells_its_history_and_the_dashboard_counts_it(
    admin: Client, orders: Queue
) -> None:
    admin.post("/alerts/rules/new", rule_post(orders, dead_letters__threshold="0"))
    DatabaseMessage.objects.create(
        queue=orders,
        message_id=uuid.uuid4(),
        body={},
        state=MessageState.DEAD,
        available_at=timezone.now(),
    )
    evaluator.evaluate()
    alert = Alert.objects.get(state=AlertState.OPEN)
    home = admin.get("/").content.decode()
    assert '<span id="dashboard-open-alerts">1</span>' in home
    page = admin.get(f"/alerts/{alert.pk}/").content.decode()
    assert "1 dead letters on queue orders (more than 0)." in page
    assert "Opened" in page
    assert "email to ops@example.com, oncall@example.com" in page
    assert admin.get("/alerts/999999/").status_code == 404


def test_a_paused_queue_says_so_and_an_admin_resumes_it(admin: Client, orders: Queue) -> None:
    saved = admin.post(
        f"/queues/{orders.pk}/",
        {
            "name": "orders",
            "type": "database",
            "visibility_timeout": "30",
            "max_attempts": "5",
            "pause_after_failures": "3",
            "enabled": "on",
        },
    )
    assert saved.status_code == 302
    orders.refresh_from_db()
    assert orders.pause_after_failures == 3
    # The "Queue paused" rule a migration creates (made again: a transactional test flushes it).
    AlertRule.objects.get_or_create(name="Queue paused", defaults={"kind": "queue_paused"})
    assert pausing.pause(orders.pk, 3, "RuntimeError: the CRM is down")
    alert = Alert.objects.get(rule__kind="queue_paused", state=AlertState.OPEN)
    page = admin.get(f"/queues/{orders.pk}/").content.decode()
    assert "Consumption paused at" in page
    assert "Paused after 3 consecutive handler failures" in page
    assert "RuntimeError: the CRM is down" in page
    assert "paused" in admin.get("/queues/").content.decode()
    (workers,) = [c for c in readiness().checks if c.name == "workers"]
    assert workers.detail.endswith("Paused after consecutive handler failures: orders.")

    assert admin.post(f"/queues/{orders.pk}/resume").status_code == 302
    orders.refresh_from_db()
    assert orders.paused_at is None
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED
    assert "Consumption paused" not in admin.get(f"/queues/{orders.pk}/").content.decode()
    assert admin.post(f"/queues/{orders.pk}/resume").status_code == 302  # not paused: no error
    trail = AuditEvent.objects.filter(action__in=["queue.pause", "queue.resume"]).order_by("id")
    assert [(e.action, e.actor_name) for e in trail][-2:] == [
        ("queue.pause", trail[0].actor_name),
        ("queue.resume", "root"),
    ]
    assert trail[0].details["failures"] == 3
