"""The outbox: committed record changes waiting for the relay to publish them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.db.models import Min

from alerts.conditions.base import Breach, Condition, Param, Reading, Scope, register
from queues.models import OutboxMessage, OutboxState

if TYPE_CHECKING:
    from alerts.models import AlertRule


@register
class OutboxAge(Condition):
    key = "outbox_age"
    order = 20
    label = "Outbox age above S seconds"
    description = (
        "The oldest message still waiting in the outbox (committed, not yet published to its "
        "queue): is a relay running, can it reach the engine? With a queue: that queue's only."
    )
    params = (Param("seconds", "Older than (seconds)", 300, minimum=1),)
    scope = Scope.QUEUE

    def where(self, rule: AlertRule) -> str:
        return f"for queue {rule.queue.name}" if rule.queue is not None else "for any queue"

    def describe(self, rule: AlertRule) -> str:
        return f"Outbox message waiting more than {self.param(rule, 'seconds'):g} s " + (
            self.where(rule)
        )

    def observe(self, rule: AlertRule, now: datetime) -> Reading:
        limit = self.param(rule, "seconds")
        pending = OutboxMessage.objects.filter(state=OutboxState.PENDING)
        subject, label = "outbox", "the outbox"
        if rule.queue_id is not None:
            pending = pending.filter(queue_id=rule.queue_id)
            subject, label = f"outbox:{rule.queue_id}", f"the outbox of queue {rule.queue}"
        oldest = pending.aggregate(oldest=Min("created_at"))["oldest"]
        if oldest is None:
            return Reading()
        age = (now - oldest).total_seconds()
        if age <= limit:
            return Reading()
        summary = f"The oldest message in {label} has waited {age:.0f} s (more than {limit:g} s)."
        return Reading([Breach(subject, label, round(age), summary)])
