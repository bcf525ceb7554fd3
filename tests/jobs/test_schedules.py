"""Schedules: what is refused before anything is saved, the Celery beat row each keeps in
step, and firing — once per due time however often beat sends it, the catch-up choice for
fires missed while beat was down, run now, and failures kept on the fire."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django_celery_beat.models import PeriodicTask

from jobs import firing, schedules
from jobs.errors import (
    InvalidCron,
    InvalidRunOptions,
    InvalidSchedule,
    JobError,
    MissingHandler,
    UnknownJob,
)
from jobs.models import FireOutcome, JobRun, Schedule, ScheduleFire, Trigger
from queues.models import OutboxMessage, Queue
from tests.jobs import sample_jobs  # noqa: F401  (registers the test jobs)

pytestmark = pytest.mark.django_db

UTC = dt.UTC


def at(hour: int, minute: int = 0, second: int = 0, day: int = 2) -> dt.datetime:
    return dt.datetime(2026, 12, day, hour, minute, second, tzinfo=UTC)


def hourly(**fields: Any) -> Schedule:
    defaults: dict[str, Any] = {
        "name": "hourly report", "action": "start_job", "job": "tests.square",
        "params": [{"n": 2}], "kind": "cron", "cron": "0 * * * *",
    }  # fmt: skip
    return schedules.save(Schedule(**{**defaults, **fields}))


def test_a_schedule_keeps_a_beat_row_in_step(job_queue: Queue):
    schedule = hourly()
    task = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
    assert task.task == "jobs.fire_schedule"
    assert json.loads(task.args) == [schedule.pk]
    assert (task.crontab.minute, task.crontab.hour) == ("0", "*")
    assert task.enabled

    schedules.save(schedule, {"cron": "30 2 * * 1-5", "time_zone": "Europe/Lisbon"})
    task.refresh_from_db()
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("30", "2", "1-5")
    assert str(task.crontab.timezone) == "Europe/Lisbon"

    schedules.set_enabled(schedule, False)
    task.refresh_from_db()
    assert not task.enabled

    schedules.save(schedule, {"kind": "interval", "every_seconds": 90})
    task.refresh_from_db()
    assert task.crontab is None
    assert task.interval.every == 90

    schedules.delete(schedule)
    assert not PeriodicTask.objects.filter(pk=task.pk).exists()


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"cron": "61 * * * *"}, InvalidCron),
        ({"cron": "every hour"}, InvalidCron),
        ({"cron": "0 * * * * *"}, InvalidCron),
        ({"job": "nope"}, UnknownJob),
        ({"params": {"n": 1}}, JobError),
        ({"queue_id": 999_999}, InvalidRunOptions),
        ({"kind": "interval", "every_seconds": 1}, InvalidSchedule),
        ({"kind": "once"}, InvalidSchedule),
        ({"time_zone": "Mars/Olympus"}, InvalidSchedule),
        ({"action": "publish", "message": {"x": 1}}, MissingHandler),
        ({"action": "publish", "queue_id": None, "message": {"handler": "log"}}, InvalidSchedule),
    ],
)
def test_bad_schedules_are_refused_and_nothing_is_saved(
    job_queue: Queue, fields: dict[str, Any], error: type[JobError]
):
    base: dict[str, Any] = {
        "name": "bad", "action": "start_job", "job": "tests.square", "params": [{"n": 1}],
        "kind": "cron", "cron": "0 * * * *", "queue_id": job_queue.pk,
    }  # fmt: skip
    with pytest.raises(error):
        schedules.save(Schedule(**{**base, **fields}))
    assert Schedule.objects.count() == 0
    assert PeriodicTask.objects.count() == 0


def test_a_cron_fire_acts_once_per_due_time_however_often_it_is_sent(job_queue: Queue):
    schedule = hourly()

    first = firing.fire(schedule.pk, now=at(10) + dt.timedelta(milliseconds=200))
    again = firing.fire(schedule.pk, now=at(10, 0, 3))  # a second beat, or a redelivery
    later = firing.fire(schedule.pk, now=at(11, 0, 1))

    assert first.fire is not None
    assert first.fire.outcome == FireOutcome.STARTED
    assert first.fire.due_at == at(10)
    assert again.duplicate
    assert later.fire is not None
    assert later.fire.due_at == at(11)
    runs = list(JobRun.objects.order_by("created_at"))
    assert len(runs) == 2
    assert {run.trigger for run in runs} == {Trigger.SCHEDULE}
    assert list(ScheduleFire.objects.values_list("run", flat=True).order_by("due_at")) == [
        run.pk for run in runs
    ]


def test_cron_due_times_follow_the_schedules_time_zone(job_queue: Queue):
    schedule = hourly(cron="0 9 * * *", time_zone="America/New_York")
    fired = firing.fire(schedule.pk, now=at(14, 0, 2))  # 09:00 in New York in December
    assert fired.fire is not None
    assert fired.fire.due_at == at(14)
    assert firing.next_due(schedule, at(14, 0, 2)) == at(14, day=3)


def test_interval_fires_sent_by_two_beats_out_of_phase_act_once_per_interval(job_queue: Queue):
    schedule = hourly(kind="interval", every_seconds=60, cron="")
    beat_a = [at(10, 0, 0), at(10, 1, 0), at(10, 2, 0)]
    beat_b = [at(10, 0, 50), at(10, 1, 50), at(10, 2, 50)]  # 50 s behind
    fired = [firing.fire(schedule.pk, now=t) for t in sorted(beat_a + beat_b)]
    assert [f.fire is not None for f in fired] == [True, False, True, False, True, False]
    assert ScheduleFire.objects.count() == 3


def test_a_one_off_fires_once_then_disables_itself(job_queue: Queue):
    schedule = hourly(kind="once", cron="", run_at=at(10, 30))
    assert firing.fire(schedule.pk, now=at(10, 29)).duplicate  # not due yet
    assert firing.fire(schedule.pk, now=at(10, 30, 1)).fire is not None
    schedule.refresh_from_db()
    assert not schedule.enabled
    assert not PeriodicTask.objects.get(pk=schedule.periodic_task_id).enabled
    assert firing.fire(schedule.pk, now=at(10, 30, 2)).duplicate


@pytest.mark.parametrize(("catch_up", "outcome"), [("skip", "skipped"), ("run_once", "started")])
def test_a_fire_missed_while_beat_was_down_follows_the_catch_up_choice(
    job_queue: Queue, catch_up: str, outcome: str
):
    schedule = hourly(catch_up=catch_up)
    fired = firing.fire(schedule.pk, now=at(10, 40))  # beat back 40 minutes after 10:00

    assert fired.fire is not None
    assert fired.fire.due_at == at(10)
    assert fired.fire.outcome == outcome
    assert JobRun.objects.count() == (1 if outcome == "started" else 0)
    # The next fire, on time, runs either way.
    on_time = firing.fire(schedule.pk, now=at(11, 0, 1)).fire
    assert on_time is not None
    assert on_time.outcome == "started"


def test_a_disabled_schedule_does_not_fire_but_runs_now(job_queue: Queue):
    schedule = hourly()
    schedules.set_enabled(schedule, False)
    assert firing.fire(schedule.pk, now=at(10, 0, 1)).duplicate
    fire = schedules.run_now(schedule)
    assert fire.manual
    assert fire.outcome == FireOutcome.STARTED
    assert JobRun.objects.count() == 1


def test_a_publishing_schedule_writes_its_message_to_the_outbox(job_queue: Queue):
    schedule = schedules.save(
        Schedule(name="ping", action="publish", queue=job_queue, message={"handler": "log",
                 "ping": True}, kind="cron", cron="*/5 * * * *")
    )  # fmt: skip
    fired = firing.fire(schedule.pk, now=at(10, 5, 0))
    assert fired.fire is not None
    assert fired.fire.outcome == FireOutcome.PUBLISHED
    row = OutboxMessage.objects.get(queue=job_queue)
    assert row.body == {"handler": "log", "ping": True}
    assert row.message_id == fired.fire.message_id


def test_a_fire_that_cannot_act_is_kept_as_failed_with_its_reason(job_queue: Queue):
    schedule = schedules.save(
        Schedule(name="ping", action="publish", queue=job_queue, message={"handler": "log"},
                 kind="cron", cron="*/5 * * * *")
    )  # fmt: skip
    Queue.objects.filter(pk=job_queue.pk).update(enabled=False)
    fired = firing.fire(schedule.pk, now=at(10, 5, 0))
    assert fired.fire is not None
    assert fired.fire.outcome == FireOutcome.FAILED
    assert "disabled" in fired.fire.error
    assert OutboxMessage.objects.count() == 0
    assert firing.fire(schedule.pk, now=at(10, 5, 9)).duplicate  # not retried for that time
