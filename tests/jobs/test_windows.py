"""Time windows: a run scheduled for later starts when its time comes; instances not started
by the run's deadline are cancelled with that reason, by the housekeeping tick or by the
worker that receives one late."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from jobs import runs, windows
from jobs.errors import InvalidRunOptions
from jobs.execution import begin, finish, run_instance
from jobs.models import JobRun
from jobs.states import InstanceState, RunState
from queues.models import OutboxMessage, Queue
from tests.jobs import sample_jobs

pytestmark = pytest.mark.django_db

SOON = dt.timedelta(minutes=5)


class Settled:
    """The part of a handler context the instance handler settles through."""

    def __init__(self) -> None:
        self.outcome = ""

    def ack(self) -> None:
        self.outcome = "ack"

    def dead_letter(self, reason: str) -> None:
        self.outcome = f"dead-letter: {reason}"


def released(queue: Queue) -> int:
    return OutboxMessage.objects.filter(queue=queue).count()


def test_a_run_for_later_is_scheduled_and_starts_when_its_time_comes(job_queue: Queue):
    later = timezone.now() + SOON
    run = runs.start(
        "tests.square", [{"n": n} for n in range(3)], parallelism=2, queue="jobs",
        not_before=later,
    )  # fmt: skip

    assert run.state == RunState.SCHEDULED
    assert released(job_queue) == 0
    assert windows.tick(now=later - dt.timedelta(seconds=1)).activated == 0
    assert windows.tick(now=later).activated == 1

    run.refresh_from_db()
    assert run.state == RunState.ACTIVE
    assert run.started_at == later
    assert released(job_queue) == 2


def test_instances_not_started_by_the_deadline_are_cancelled_with_that_reason(job_queue: Queue):
    deadline = timezone.now() + SOON
    run = runs.start(
        "tests.square", [{"n": n} for n in range(4)], parallelism=2, queue="jobs",
        deadline=deadline,
    )  # fmt: skip
    done = begin(run.instances.get(index=0).pk)
    running = begin(run.instances.get(index=1).pk)
    assert done is not None
    assert running is not None
    finish(done, InstanceState.COMPLETED, result=0)

    assert windows.tick(now=deadline).expired_instances == 2  # one sent, one not yet

    states = dict(run.instances.values_list("index", "state"))
    assert states == {0: "completed", 1: "in_progress", 2: "cancelled", 3: "cancelled"}
    assert run.instances.get(index=3).reason == windows.DEADLINE_REASON
    run.refresh_from_db()
    assert run.state == RunState.FINISHING
    finish(running, InstanceState.COMPLETED, result=1)
    run.refresh_from_db()
    assert run.state == RunState.COMPLETED_WITH_ERRORS


def test_a_worker_receiving_an_instance_after_the_deadline_cancels_instead_of_running(
    job_queue: Queue, calls: sample_jobs.Calls
):
    run = runs.start(
        "tests.square", [{"n": 1}, {"n": 2}], queue="jobs", deadline=timezone.now() + SOON
    )
    JobRun.objects.filter(pk=run.pk).update(deadline=timezone.now() - dt.timedelta(seconds=1))
    ctx: Any = Settled()

    run_instance({"instance_id": str(run.instances.get(index=0).pk)}, ctx)

    assert ctx.outcome == "ack"
    assert calls.per_instance == {}
    run.refresh_from_db()
    assert run.state == RunState.FAILED
    assert run.cancelled == 2


@pytest.mark.parametrize(
    "window",
    [
        {"deadline": dt.timedelta(seconds=-1)},
        {"not_before": SOON, "deadline": SOON},
        {"deadline": dt.datetime(2099, 1, 1)},  # no time zone
    ],
)
def test_a_bad_window_is_refused(job_queue: Queue, window: dict[str, Any]):
    now = timezone.now()
    options = {k: now + v if isinstance(v, dt.timedelta) else v for k, v in window.items()}
    with pytest.raises(InvalidRunOptions):
        runs.start("tests.square", [{"n": 1}], queue="jobs", **options)
    assert JobRun.objects.count() == 0
