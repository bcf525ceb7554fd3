"""The Procfile's Celery process (a worker with beat inside) runs the jobs housekeeping tick:
a run scheduled for later starts on its own, with no call from the test."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.utils import timezone

from jobs import runs
from jobs.models import JobRun
from jobs.states import RunState
from queues.models import Queue
from tests.jobs.conftest import make_queue
from tests.queues.helpers import wait_for
from tests.queues.outbox_helpers import test_database_url as database_url

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_the_celery_process_starts_a_scheduled_run_when_its_time_comes(tmp_path: Path):
    queue: Queue = make_queue("jobs")
    run = runs.start(
        "echo", [{"n": 1}, {"n": 2}], parallelism=1, queue=queue,
        not_before=timezone.now() + dt.timedelta(seconds=1),
    )  # fmt: skip
    assert run.state == RunState.SCHEDULED
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "QUAYMASTER_VAR_DIR": str(tmp_path),
        "CELERY_BROKER_URL": "filesystem://",
        "QUAYMASTER_JOB_TICK_SECONDS": "0.3",
    }
    celery = subprocess.Popen(
        [str(BIN / "celery"), "--app", "quaymaster", "worker", "--beat", "--concurrency", "1",
         "--loglevel", "INFO"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        started = wait_for(
            lambda: JobRun.objects.exclude(state=RunState.SCHEDULED).filter(pk=run.pk).first(),
            60,
            "the Celery process to start the scheduled run",
        )
    finally:
        celery.send_signal(signal.SIGTERM)  # a warm shutdown
        try:
            output, _ = celery.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(celery.pid, signal.SIGKILL)
            output, _ = celery.communicate()
    assert started.state == RunState.ACTIVE, output
    assert started.started_at is not None
    assert started.started_at >= run.not_before
    assert "jobs.tick" in output
