"""The jobs app's housekeeping deletes runs that ended before the retention (with their
instances) and old schedule fires, and nothing that is still open; beat's static schedule
names only tasks the Celery worker knows."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from jobs import housekeeping, runs
from jobs.execution import begin, finish
from jobs.models import JobInstance, JobRun, Schedule, ScheduleFire
from jobs.states import InstanceState
from queues.models import Queue
from tests.jobs import sample_jobs  # noqa: F401  (registers the test jobs)

pytestmark = pytest.mark.django_db


def ended(queue: Queue, days_ago: float) -> JobRun:
    run = runs.start("tests.square", [{"n": 1}], queue=queue)
    started = begin(run.instances.get().pk)
    assert started is not None
    finish(started, InstanceState.COMPLETED, result=1)
    JobRun.objects.filter(pk=run.pk).update(
        finished_at=timezone.now() - dt.timedelta(days=days_ago)
    )
    return run


def test_runs_that_ended_before_the_retention_are_deleted_open_ones_never(
    job_queue: Queue, settings: Any
):
    settings.QUAYMASTER_JOB_RETENTION_DAYS = 30
    old = ended(job_queue, 31)
    recent = ended(job_queue, 29)
    still_open = runs.start("tests.square", [{"n": 1}, {"n": 2}], parallelism=1, queue=job_queue)
    JobRun.objects.filter(pk=still_open.pk).update(
        created_at=timezone.now() - dt.timedelta(days=90)
    )
    schedule = Schedule.objects.create(name="s", action="start_job", kind="cron", cron="0 * * * *")
    long_ago = timezone.now() - dt.timedelta(days=31)
    ScheduleFire.objects.create(schedule=schedule, due_at=long_ago, fired_at=long_ago,
                                outcome="started")  # fmt: skip
    ScheduleFire.objects.create(schedule=schedule, due_at=timezone.now(), outcome="started")

    done = housekeeping.prune()

    assert (done.runs, done.fires) == (1, 1)
    assert set(JobRun.objects.values_list("pk", flat=True)) == {recent.pk, still_open.pk}
    assert not JobInstance.objects.filter(run_id=old.pk).exists()
    assert ScheduleFire.objects.count() == 1


def test_every_static_beat_entry_is_a_task_the_worker_knows():
    from quaymaster.celery import app

    app.loader.import_default_modules()
    names = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert names == {
        "jobs.tick", "jobs.prune", "queues.prune_outbox", "queues.prune_idempotency_keys",
        "workers.prune_lifecycle", "audit.prune", "alerts.evaluate",
        "alerts.prune", "queues.replays",
    }  # fmt: skip
    assert names <= set(app.tasks)
    assert "jobs.fire_schedule" in app.tasks
