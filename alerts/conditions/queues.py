"""Conditions read from a queue's engine or its row: dead letters, consumer lag, a pause.

The engine figures come from ``queues.services.live_stats`` (``Backend.stats()``) with short
timeouts, one queue after another: a broker that does not answer makes its queue "unknown"
for this pass (its open alert stays open), never an error of the evaluator.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from alerts.conditions.base import Breach, Condition, Param, Reading, Scope, queue_subject, register
from queues import services
from queues.messages import QueueStats
from queues.models import Queue

if TYPE_CHECKING:
    from alerts.models import AlertRule

#: How long one engine may take to give its figures.
STATS_TIMEOUT = 2.0


def _stats(queue: Queue) -> QueueStats | None:
    try:
        return services.live_stats(queue, timeout=STATS_TIMEOUT).stats
    except Exception:  # an engine's failure, in whatever form its client raises it
        return None


class _EngineFigure(Condition):
    """More than ``threshold`` of one engine figure, per queue."""

    scope = Scope.QUEUE
    noun: str = ""

    def figure(self, stats: QueueStats) -> int | None:
        raise NotImplementedError

    def describe(self, rule: AlertRule) -> str:
        return f"More than {self.param(rule, 'threshold'):g} {self.noun} {self.where(rule)}"

    def observe(self, rule: AlertRule, now: datetime) -> Reading:
        limit = self.param(rule, "threshold")
        reading = Reading()
        for queue in self.queues_of(rule):
            stats = _stats(queue)
            value = self.figure(stats) if stats is not None else None
            if value is None:
                reading.unknown.add(queue_subject(queue))
            elif value > limit:
                reading.breaches.append(
                    Breach(
                        queue_subject(queue),
                        f"queue {queue.name}",
                        value,
                        f"{value} {self.noun} on queue {queue.name} (more than {limit:g}).",
                    )
                )
        return reading


@register
class DeadLetters(_EngineFigure):
    key = "dead_letters"
    order = 10
    label = "Dead letters above N"
    description = (
        "Messages waiting in a queue's dead-letter queue, as its engine counts them (those an "
        "admin already sent back or deleted are left out)."
    )
    params = (Param("threshold", "More than (dead letters)", 0),)
    noun = "dead letters"

    def figure(self, stats: QueueStats) -> int | None:
        return stats.dead_letters


@register
class ConsumerLag(_EngineFigure):
    key = "consumer_lag"
    order = 50
    label = "Consumer lag above N"
    description = (
        "How far the workers are behind: the consumer group's lag on Kafka, the messages "
        "waiting to be fetched on the other engines."
    )
    params = (Param("threshold", "More than (messages)", 1000),)
    noun = "messages behind"

    def figure(self, stats: QueueStats) -> int | None:
        return stats.lag if stats.lag is not None else stats.depth


@register
class QueuePaused(Condition):
    key = "queue_paused"
    order = 70
    label = "Queue paused after consecutive failures"
    description = (
        "A queue with 'pause after N consecutive failures' stopped being consumed; open until "
        "an admin resumes it. Opens as the queue pauses, without waiting for the evaluator."
    )
    scope = Scope.QUEUE

    def describe(self, rule: AlertRule) -> str:
        return f"Consumption paused after consecutive handler failures {self.where(rule)}"

    def queues_of(self, rule: AlertRule) -> list[Queue]:  # type: ignore[override]
        queues = Queue.objects.filter(paused_at__isnull=False)
        if rule.queue_id is not None:
            queues = queues.filter(pk=rule.queue_id)
        return list(queues.order_by("name"))

    def observe(self, rule: AlertRule, now: datetime) -> Reading:
        return Reading(
            [
                Breach(
                    queue_subject(queue),
                    f"queue {queue.name}",
                    None,
                    f"Queue {queue.name}: {queue.paused_reason or 'paused'}"[:500],
                )
                for queue in self.queues_of(rule)
            ]
        )
