"""Conditions read from the workers' own records: their heartbeats and the lifecycle log."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db.models import Count, Max

from alerts.conditions.base import Breach, Condition, Param, Reading, Scope, queue_subject, register
from workers.models import EventKind, LifecycleEvent, WorkerProcess

if TYPE_CHECKING:
    from alerts.models import AlertRule


@register
class NoWorker(Condition):
    key = "no_worker"
    order = 30
    label = "No worker for a queue for S seconds"
    description = (
        "An enabled queue without a live worker (one that heartbeats) for longer than S "
        "seconds. Paused queues are left out: their pause is an alert of its own."
    )
    params = (Param("seconds", "For longer than (seconds)", 60, minimum=1),)
    scope = Scope.QUEUE

    def describe(self, rule: AlertRule) -> str:
        seconds = self.param(rule, "seconds")
        return f"No live worker for more than {seconds:g} s {self.where(rule)}"

    def observe(self, rule: AlertRule, now: datetime) -> Reading:
        limit = self.param(rule, "seconds")
        queues = [q for q in self.queues_of(rule) if q.enabled and q.paused_at is None]
        ids = [q.pk for q in queues]
        alive = set(
            WorkerProcess.objects.alive().filter(queue__in=ids).values_list("queue_id", flat=True)
        )
        last = dict(
            WorkerProcess.objects.filter(queue__in=ids)
            .values("queue")
            .annotate(last=Max("heartbeat_at"))
            .values_list("queue", "last")
        )
        reading = Reading()
        for queue in queues:
            if queue.pk in alive:
                continue
            since = max(last.get(queue.pk) or queue.created_at, queue.created_at)
            gap = (now - since).total_seconds()
            if gap > limit:
                reading.breaches.append(
                    Breach(
                        queue_subject(queue),
                        f"queue {queue.name}",
                        round(gap),
                        f"No live worker for queue {queue.name} for {gap:.0f} s "
                        f"(more than {limit:g} s).",
                    )
                )
        return reading


@register
class ErrorRate(Condition):
    key = "error_rate"
    order = 40
    label = "Handler error rate above X% over W minutes"
    description = (
        "Of the handler runs that ended in the last W minutes (the lifecycle log's complete "
        "and failed lines), the share that failed; a queue with fewer runs than the minimum "
        "is not judged."
    )
    params = (
        Param("percent", "Above (%)", 10, maximum=100, integer=False),
        Param("minutes", "Over the last (minutes)", 5, minimum=1, maximum=10080),
        Param("min_runs", "At least (runs)", 10, minimum=1),
    )
    scope = Scope.QUEUE

    def describe(self, rule: AlertRule) -> str:
        percent, minutes = self.param(rule, "percent"), self.param(rule, "minutes")
        return f"Handler error rate above {percent:g}% over {minutes:g} min {self.where(rule)}"

    def observe(self, rule: AlertRule, now: datetime) -> Reading:
        percent = self.param(rule, "percent")
        minutes = self.param(rule, "minutes")
        least = self.param(rule, "min_runs")
        queues = {q.name: q for q in self.queues_of(rule)}
        rows = (
            LifecycleEvent.objects.filter(
                at__gte=now - timedelta(minutes=minutes),
                kind__in=[EventKind.COMPLETE, EventKind.FAILED],
                queue__in=list(queues),
            )
            .values("queue", "kind")
            .annotate(n=Count("id"))
        )
        runs: Counter[str] = Counter()
        failed: Counter[str] = Counter()
        for row in rows:
            runs[row["queue"]] += row["n"]
            if row["kind"] == EventKind.FAILED:
                failed[row["queue"]] += row["n"]
        reading = Reading()
        for name, queue in queues.items():
            if runs[name] < least:
                continue
            rate = 100.0 * failed[name] / runs[name]
            if rate > percent:
                reading.breaches.append(
                    Breach(
                        queue_subject(queue),
                        f"queue {name}",
                        round(rate, 1),
                        f"{rate:.1f}% of {runs[name]} handler runs failed on queue {name} in "
                        f"the last {minutes:g} min (more than {percent:g}%).",
                    )
                )
        return reading
