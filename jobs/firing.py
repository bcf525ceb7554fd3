"""Firing a schedule: exactly once per due time, whatever sends the fire.

Celery beat sends ``jobs.fire_schedule(schedule_id)`` when a schedule is due; ``fire`` then
works out which due time that is and records one ``ScheduleFire`` for it before acting, in
the same transaction, under the schedule's row lock:

- a cron schedule's due time is the latest time its expression matches, at or before now, in
  the schedule's time zone; two sends of the same fire (two beats running by mistake, a task
  delivered twice) find the same due time, and the second finds it fired;
- an interval schedule's due time is now, and a fire less than 90% of an interval after the
  last one is the same fire (Celery's intervals run from each send, not on a fixed grid, so a
  grid would drift; two beats, whatever their phase, then fire once per interval between them);
- a one-off's due time is its ``run_at``; it fires once, then disables itself.

A fire that comes more than ``QUAYMASTER_SCHEDULE_GRACE_SECONDS`` after its due time was
missed while beat was down: a schedule set to ``skip`` records it as skipped and does
nothing; one set to ``run_once`` runs it once (beat sends one fire for any number missed).

The action runs in the fire's transaction: a job run starts (its first instances through the
outbox), or the message goes into the outbox. A refusal (the job was unregistered, the queue
was disabled) is recorded on the fire as ``failed`` with its reason, and shown to admins.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from croniter import croniter
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_celery_beat.models import PeriodicTask, PeriodicTasks

from jobs import runs
from jobs.errors import JobError
from jobs.models import (
    CatchUp,
    FireOutcome,
    Schedule,
    ScheduleAction,
    ScheduleFire,
    ScheduleKind,
    Trigger,
)
from queues.models import OutboxMessage
from queues.outbox import notify_at_commit

#: Within this share of an interval after the last fire, a send is the same fire again.
INTERVAL_SAME_FIRE = 0.9


def grace() -> dt.timedelta:
    return dt.timedelta(seconds=float(getattr(settings, "QUAYMASTER_SCHEDULE_GRACE_SECONDS", 60)))


def due_time(schedule: Schedule, now: dt.datetime) -> dt.datetime | None:
    """The due time a fire at ``now`` is for; None when nothing is due yet."""
    if schedule.kind == ScheduleKind.CRON:
        zone = ZoneInfo(schedule.time_zone)
        # croniter has second resolution and its previous match is strictly before its base.
        base = now.astimezone(zone).replace(microsecond=0) + dt.timedelta(seconds=1)
        previous: dt.datetime = croniter(schedule.cron, base).get_prev(dt.datetime)
        return previous.astimezone(dt.UTC)
    if schedule.kind == ScheduleKind.ONCE:
        return schedule.run_at if schedule.run_at and schedule.run_at <= now else None
    return now.replace(microsecond=0)


def next_due(schedule: Schedule, now: dt.datetime) -> dt.datetime | None:
    """When the schedule fires next (for the pages), None when never."""
    if not schedule.enabled:
        return None
    if schedule.kind == ScheduleKind.CRON:
        zone = ZoneInfo(schedule.time_zone)
        following: dt.datetime = croniter(schedule.cron, now.astimezone(zone)).get_next(dt.datetime)
        return following
    if schedule.kind == ScheduleKind.ONCE:
        return schedule.run_at if schedule.run_at and schedule.run_at > now else None
    last = schedule.fires.filter(manual=False).order_by("-due_at").first()
    every = dt.timedelta(seconds=schedule.every_seconds or 0)
    start = last.due_at if last else schedule.created_at
    return max(start + every, now)


@dataclass(frozen=True)
class Fired:
    """What a fire did: ``fire`` is None when it was a repeat of a fire already done."""

    fire: ScheduleFire | None
    duplicate: bool = False


def fire(schedule_id: int, *, now: dt.datetime | None = None, manual: bool = False) -> Fired:
    """Fire the schedule for the due time of ``now`` (``manual``: "run now", always fires)."""
    now = now or timezone.now()
    try:
        with transaction.atomic():
            schedule = Schedule.objects.select_for_update().filter(pk=schedule_id).first()
            if schedule is None or (not manual and not schedule.enabled):
                return Fired(None, duplicate=True)
            due = now if manual else due_time(schedule, now)
            if due is None or (not manual and _fired_already(schedule, due)):
                return Fired(None, duplicate=True)
            record = ScheduleFire(schedule=schedule, due_at=due, fired_at=now, manual=manual)
            late = lateness(schedule, due, now)
            if not manual and late > grace() and schedule.catch_up == CatchUp.SKIP:
                record.outcome = FireOutcome.SKIPPED
                record.error = f"missed by {int(late.total_seconds())} s while beat was down"
                record.save()
                return Fired(record)
            _act(schedule, record)
            record.save()
            if schedule.kind == ScheduleKind.ONCE and not manual:
                _disable(schedule)
            return Fired(record)
    except IntegrityError:
        return Fired(None, duplicate=True)  # another fire of this due time won the insert


def _disable(schedule: Schedule) -> None:
    """A one-off has fired: off, here and in beat's row."""
    Schedule.objects.filter(pk=schedule.pk).update(enabled=False)
    if schedule.periodic_task_id is not None:
        PeriodicTask.objects.filter(pk=schedule.periodic_task_id).update(enabled=False)
        PeriodicTasks.update_changed()


def lateness(schedule: Schedule, due: dt.datetime, now: dt.datetime) -> dt.timedelta:
    """How long after its due time a fire comes; for an interval, how much longer than the
    interval since the last fire."""
    if schedule.kind != ScheduleKind.INTERVAL:
        return now - due
    last = schedule.fires.filter(manual=False).order_by("-due_at").first()
    if last is None:
        return dt.timedelta(0)
    return now - last.due_at - dt.timedelta(seconds=schedule.every_seconds or 0)


def _fired_already(schedule: Schedule, due: dt.datetime) -> bool:
    fires = schedule.fires.filter(manual=False)
    if schedule.kind == ScheduleKind.INTERVAL:
        window = dt.timedelta(seconds=(schedule.every_seconds or 0) * INTERVAL_SAME_FIRE)
        return fires.filter(due_at__gt=due - window).exists()
    return fires.filter(due_at=due).exists()


def _act(schedule: Schedule, record: ScheduleFire) -> None:
    """Start the run or write the message, inside the fire's transaction; a refusal is kept
    on the fire (a savepoint undoes what the action had written)."""
    try:
        with transaction.atomic():
            if schedule.action == ScheduleAction.START_JOB:
                record.run = runs.start(
                    schedule.job,
                    schedule.params,
                    parallelism=schedule.parallelism,
                    queue=schedule.queue if schedule.queue_id else None,
                    trigger=Trigger.SCHEDULE,
                )
                record.outcome = FireOutcome.STARTED
            else:
                if schedule.queue is None or not schedule.queue.enabled:
                    raise JobError("The schedule's queue is missing or disabled.")
                message_id = uuid.uuid4()
                OutboxMessage.objects.create(
                    message_id=message_id,
                    queue=schedule.queue,
                    ordering_key=f"schedule:{schedule.pk}",
                    body=dict(schedule.message),
                )
                notify_at_commit()
                record.message_id = message_id
                record.outcome = FireOutcome.PUBLISHED
    except JobError as exc:
        record.outcome = FireOutcome.FAILED
        record.error = exc.message
