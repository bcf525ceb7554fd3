"""Creating, changing and deleting schedules, each with the Celery beat row it owns.

A ``Schedule`` keeps one django-celery-beat ``PeriodicTask`` (task ``jobs.fire_schedule``,
its id as the argument) with a crontab, interval or clocked schedule; every change here
changes that row in the same transaction, and beat's database scheduler notices it
(``PeriodicTasks.changed``) without a restart.

Everything is checked before anything is saved, with the same rules for the page and the
API: a bad cron expression (``invalid_cron``), an unknown job (``unknown_job``), a queue that
does not exist or is disabled (``invalid_run_options``), a message without a handler
(``missing_handler``), and the rest (``invalid_schedule``, naming the field).
"""

from __future__ import annotations

import json
import zoneinfo
from collections.abc import Mapping
from typing import Any

from croniter import croniter
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
)

from audit import trail
from jobs import firing
from jobs.errors import InvalidCron, InvalidSchedule, MissingHandler, ScheduleNotFound
from jobs.models import CatchUp, Schedule, ScheduleAction, ScheduleFire, ScheduleKind
from jobs.params import check_params
from jobs.registry import registry
from jobs.runs import check_parallelism, resolve_queue

FIRE_TASK = "jobs.fire_schedule"
MIN_INTERVAL_SECONDS = 10
EDITABLE = (
    "name", "description", "enabled", "action", "job", "params", "parallelism", "queue",
    "message", "kind", "cron", "every_seconds", "run_at", "time_zone", "catch_up",
)  # fmt: skip


def get_schedule(schedule_id: int | str) -> Schedule:
    try:
        return Schedule.objects.select_related("queue").get(pk=int(schedule_id))
    except (ValueError, Schedule.DoesNotExist):
        raise ScheduleNotFound(f"No schedule {schedule_id}.") from None


def _invalid(field: str, message: str, kind: type[InvalidSchedule] = InvalidSchedule) -> None:
    raise kind(message, {field: [message]})


def check(schedule: Schedule) -> None:
    """Every rule a schedule must meet, before it is saved (raises ``InvalidSchedule`` or,
    for a job or queue, the jobs app's own errors)."""
    if not schedule.name.strip():
        _invalid("name", "A schedule needs a name.")
    if Schedule.objects.exclude(pk=schedule.pk).filter(name=schedule.name).exists():
        _invalid("name", f"A schedule named {schedule.name!r} exists already.")
    if schedule.kind not in ScheduleKind.values:
        _invalid("kind", f"Choose one of {', '.join(ScheduleKind.values)}.")
    if schedule.catch_up not in CatchUp.values:
        _invalid("catch_up", f"Choose one of {', '.join(CatchUp.values)}.")
    if schedule.time_zone not in zoneinfo.available_timezones():
        _invalid("time_zone", f"Unknown time zone {schedule.time_zone!r}.")
    if schedule.kind == ScheduleKind.CRON:
        if len(schedule.cron.split()) != 5 or not croniter.is_valid(schedule.cron):
            _invalid("cron", f"{schedule.cron!r} is not a cron expression of five fields "
                     "(minute hour day-of-month month day-of-week).", InvalidCron)  # fmt: skip
    elif schedule.kind == ScheduleKind.INTERVAL:
        if schedule.every_seconds is None or schedule.every_seconds < MIN_INTERVAL_SECONDS:
            _invalid("every_seconds", f"An interval is at least {MIN_INTERVAL_SECONDS} seconds.")
    elif schedule.run_at is None:
        _invalid("run_at", "A one-off schedule needs the time to run at.")
    elif timezone.is_naive(schedule.run_at):
        _invalid("run_at", "The time to run at needs a time zone.")
    if schedule.action == ScheduleAction.START_JOB:
        registry.get(schedule.job)
        check_params(schedule.params)
        check_parallelism(schedule.parallelism)
        if schedule.queue_id is not None:
            resolve_queue(schedule.queue_id, what="schedule")
    elif schedule.action == ScheduleAction.PUBLISH:
        if schedule.queue_id is None:
            _invalid("queue", "Choose the queue the message goes to.")
        resolve_queue(schedule.queue_id, what="schedule")
        if not isinstance(schedule.message, dict):
            _invalid("message", "The message must be a JSON object.")
        handler = schedule.message.get("handler")
        if not isinstance(handler, str) or not handler.strip():
            _invalid("message", 'The message needs a "handler" (the handler\'s name).',
                     MissingHandler)  # fmt: skip
    else:
        _invalid("action", f"Choose one of {', '.join(ScheduleAction.values)}.")


@transaction.atomic
def save(schedule: Schedule, changes: Mapping[str, Any] | None = None) -> Schedule:
    """Apply ``changes`` (field → value), check, save, and bring beat's row in step."""
    stored = Schedule.objects.filter(pk=schedule.pk).first() if schedule.pk else None
    for key, value in (changes or {}).items():
        if key not in EDITABLE:
            _invalid(key, f"{key!r} cannot be set.")
        setattr(schedule, key, value)
    check(schedule)
    schedule.save()
    _sync(schedule)
    before = trail.snapshot(stored, AUDITED) if stored is not None else None
    action = "schedule.create" if stored is None else "schedule.change"
    trail.record(action, schedule, before=before, after=trail.snapshot(schedule, AUDITED))
    return schedule


#: What the audit trail keeps of a schedule.
AUDITED = (
    "name", "description", "enabled", "action", "job", "params", "parallelism", "queue",
    "message", "kind", "cron", "every_seconds", "run_at", "time_zone", "catch_up",
)  # fmt: skip


@transaction.atomic
def delete(schedule: Schedule) -> None:
    trail.record("schedule.delete", schedule, before=trail.snapshot(schedule, AUDITED))
    task = schedule.periodic_task
    schedule.delete()
    if task is not None:
        task.delete()


@transaction.atomic
def set_enabled(schedule: Schedule, enabled: bool) -> Schedule:
    schedule.enabled = enabled
    schedule.save(update_fields=["enabled", "updated_at"])
    _sync(schedule)
    action = "schedule.enable" if enabled else "schedule.disable"
    trail.record(action, schedule, before={"enabled": not enabled}, after={"enabled": enabled})
    return schedule


def run_now(schedule: Schedule) -> ScheduleFire:
    """Fire once, now, whatever the schedule's timing (enabled or not)."""
    fired = firing.fire(schedule.pk, manual=True)
    assert fired.fire is not None  # a manual fire always fires
    trail.record("schedule.run_now", schedule, details={"fire": fired.fire.pk})
    return fired.fire


def _sync(schedule: Schedule) -> None:
    """Create or update the schedule's PeriodicTask (and its crontab/interval/clock)."""
    task = schedule.periodic_task or PeriodicTask(name=f"quaymaster-schedule-{schedule.pk}")
    task.task = FIRE_TASK
    task.args = json.dumps([schedule.pk])
    task.enabled = schedule.enabled
    task.description = f"Quaymaster schedule {schedule.name!r} (jobs.Schedule {schedule.pk})"
    task.crontab = task.interval = task.clocked = None
    task.one_off = False
    if schedule.kind == ScheduleKind.CRON:
        minute, hour, day, month, weekday = schedule.cron.split()
        task.crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute, hour=hour, day_of_month=day, month_of_year=month,
            day_of_week=weekday, timezone=zoneinfo.ZoneInfo(schedule.time_zone),
        )  # fmt: skip
    elif schedule.kind == ScheduleKind.INTERVAL:
        task.interval, _ = IntervalSchedule.objects.get_or_create(
            every=schedule.every_seconds, period=IntervalSchedule.SECONDS
        )
    else:
        task.clocked, _ = ClockedSchedule.objects.get_or_create(clocked_time=schedule.run_at)
        task.one_off = True
    task.save()
    if schedule.periodic_task_id != task.pk:
        schedule.periodic_task = task
        schedule.save(update_fields=["periodic_task"])
