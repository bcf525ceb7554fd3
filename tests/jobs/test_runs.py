"""Starting and steering runs, without workers: the bookkeeping a user relies on — what is
created, what is released to the queue, what each state change allows."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jobs import runs
from jobs.dispatch import INSTANCE_HANDLER
from jobs.errors import (
    IllegalTransition,
    InvalidParallelism,
    InvalidParameters,
    InvalidRunOptions,
    JobError,
    TooManyInstances,
    UnknownJob,
)
from jobs.execution import begin, finish
from jobs.models import JobInstance, JobRun, RunTransition
from jobs.states import InstanceState, RunState
from queues.models import OutboxMessage, Queue
from tests.jobs import sample_jobs  # noqa: F401  (registers the test jobs)

pytestmark = pytest.mark.django_db


def sent(queue: Queue) -> list[dict[str, Any]]:
    return [m.body for m in OutboxMessage.objects.filter(queue=queue).order_by("id")]


def run_one(instance: JobInstance, state: InstanceState = InstanceState.COMPLETED) -> None:
    started = begin(instance.pk)
    assert started is not None
    finish(started, state, result={"ok": True} if state == InstanceState.COMPLETED else None)


def test_start_creates_one_instance_per_object_and_releases_the_first_wave(job_queue: Queue):
    params = [{"n": n} for n in range(7)]
    run = runs.start("tests.square", params, parallelism=3, queue="jobs")

    instances = list(run.instances.order_by("index"))
    assert [i.params for i in instances] == params
    assert len({i.pk for i in instances}) == 7
    assert run.state == RunState.ACTIVE
    assert run.total == 7
    bodies = sent(job_queue)
    assert [b["instance_id"] for b in bodies] == [str(i.pk) for i in instances[:3]]
    assert {b["handler"] for b in bodies} == {INSTANCE_HANDLER}
    assert {b["run_id"] for b in bodies} == {str(run.pk)}


def test_each_ended_instance_releases_the_next_one(job_queue: Queue):
    run = runs.start("tests.square", [{"n": n} for n in range(5)], parallelism=2, queue="jobs")
    first = run.instances.get(index=0)

    run_one(first)

    assert [b["index"] for b in sent(job_queue)] == [0, 1, 2]
    run.refresh_from_db()
    assert (run.released, run.finished, run.completed) == (3, 1, 1)


def test_the_last_instance_completes_the_run_and_sends_one_completion_event(
    job_queue: Queue, events_queue: Queue
):
    run = runs.start(
        "tests.square", [{"n": 1}, {"n": 2}], parallelism=5, queue="jobs",
        on_complete="job-events", on_complete_handler="chain",
    )  # fmt: skip
    first, second = run.instances.order_by("index")
    run_one(first)
    assert sent(events_queue) == []
    run_one(second, InstanceState.ERRORED)
    # A second finish of the same instance changes nothing and sends nothing.
    assert finish(second, InstanceState.COMPLETED) is False

    run.refresh_from_db()
    assert run.state == RunState.COMPLETED_WITH_ERRORS
    [event] = sent(events_queue)
    assert event["handler"] == "chain"
    assert event["event"] == "job.completed"
    assert event["run_id"] == str(run.pk)
    assert event["state"] == "completed_with_errors"
    assert event["counts"] == {
        "total": 2, "pending": 0, "in_progress": 0, "completed": 1, "errored": 1, "cancelled": 0,
    }  # fmt: skip
    assert event["finished_at"] is not None
    states = list(RunTransition.objects.filter(run=run).values_list("to_state", flat=True))
    assert states == ["active", "finishing", "completed_with_errors"]


@pytest.mark.parametrize(
    ("job", "params", "options", "error"),
    [
        ("nope", [{}], {}, UnknownJob),
        ("tests.square", {"n": 1}, {}, InvalidParameters),
        ("tests.square", [{"n": 1}, 2], {}, InvalidParameters),
        ("tests.square", [], {}, InvalidParameters),
        ("tests.square", [{"n": float("nan")}], {}, InvalidParameters),
        ("tests.square", [{"n": n} for n in range(4)], {}, TooManyInstances),
        ("tests.square", [{"n": 1}], {"parallelism": 0}, InvalidParallelism),
        ("tests.square", [{"n": 1}], {"parallelism": "5"}, InvalidParallelism),
        ("tests.square", [{"n": 1}], {"parallelism": True}, InvalidParallelism),
        ("tests.square", [{"n": 1}], {"queue": "missing"}, InvalidRunOptions),
        ("tests.square", [{"n": 1}], {"on_complete": "missing"}, InvalidRunOptions),
    ],
)
def test_bad_input_is_refused_and_creates_nothing(
    job_queue: Queue, settings: Any, job: str, params: Any, options: dict[str, Any],
    error: type[JobError],
):  # fmt: skip
    settings.QUAYMASTER_JOB_MAX_INSTANCES = 3
    with pytest.raises(error):
        runs.start(job, params, **{"queue": "jobs", **options})
    assert JobRun.objects.count() == 0
    assert JobInstance.objects.count() == 0
    assert OutboxMessage.objects.count() == 0


def test_a_disabled_queue_is_refused(job_queue: Queue):
    job_queue.enabled = False
    job_queue.save()
    with pytest.raises(InvalidRunOptions, match="disabled"):
        runs.start("tests.square", [{"n": 1}], queue="jobs")


def test_the_same_source_starts_one_run(job_queue: Queue):
    first = runs.start("tests.square", [{"n": 1}], queue="jobs", source="message:abc")
    again = runs.start("tests.square", [{"n": 1}], queue="jobs", source="message:abc")
    assert again.pk == first.pk
    assert JobRun.objects.count() == 1


def test_a_paused_run_releases_nothing_until_resumed(job_queue: Queue):
    run = runs.start("tests.square", [{"n": n} for n in range(4)], parallelism=1, queue="jobs")
    runs.pause(run.pk)
    run_one(run.instances.get(index=0))
    assert len(sent(job_queue)) == 1

    resumed = runs.resume(run.pk)

    assert resumed.state == RunState.ACTIVE
    assert [b["index"] for b in sent(job_queue)] == [0, 1]


def test_cancel_cancels_what_has_not_started_and_ends_when_the_running_one_ends(
    job_queue: Queue, events_queue: Queue
):
    run = runs.start(
        "tests.square", [{"n": n} for n in range(5)], parallelism=2, queue="jobs",
        on_complete="job-events",
    )  # fmt: skip
    running = begin(run.instances.get(index=0).pk)
    assert running is not None

    cancelled = runs.cancel(run.pk)

    assert cancelled.state == RunState.FINISHING
    states = dict(run.instances.values_list("index", "state"))
    assert states == {0: "in_progress", 1: "cancelled", 2: "cancelled", 3: "cancelled",
                      4: "cancelled"}  # fmt: skip
    # The released-but-not-started instance is acknowledged without running.
    assert begin(run.instances.get(index=1).pk) is None
    assert sent(events_queue) == []

    finish(running, InstanceState.COMPLETED, result=1)

    run.refresh_from_db()
    assert run.state == RunState.CANCELLED
    assert [e["state"] for e in sent(events_queue)] == ["cancelled"]


def test_retry_failed_sends_only_errored_instances_again(job_queue: Queue):
    run = runs.start("tests.square", [{"n": n} for n in range(3)], parallelism=3, queue="jobs")
    a, b, c = run.instances.order_by("index")
    run_one(a)
    run_one(b, InstanceState.ERRORED)
    run_one(c)
    run.refresh_from_db()
    assert run.state == RunState.COMPLETED_WITH_ERRORS
    before = len(sent(job_queue))

    run, count = runs.retry_failed(run.pk)

    assert count == 1
    assert run.state == RunState.FINISHING
    again = sent(job_queue)[before:]
    assert [m["instance_id"] for m in again] == [str(b.pk)]
    b.refresh_from_db()
    assert (b.state, b.attempts, b.error) == ("pending", 0, None)


@pytest.mark.parametrize("action", [runs.pause, runs.resume, runs.cancel])
def test_an_ended_run_cannot_be_steered(job_queue: Queue, action: Any):
    run = runs.start("tests.square", [{"n": 1}], queue="jobs")
    run_one(run.instances.get())
    with pytest.raises(IllegalTransition):
        action(run.pk)


def test_a_completed_run_has_nothing_to_retry(job_queue: Queue):
    run = runs.start("tests.square", [{"n": 1}], queue="jobs")
    run_one(run.instances.get())
    with pytest.raises(IllegalTransition):
        runs.retry_failed(run.pk)


@pytest.mark.parametrize("priority", [-1, 10, "9", True, 2.5])
def test_a_priority_outside_0_to_9_is_refused_and_creates_nothing(job_queue: Queue, priority: Any):
    with pytest.raises(InvalidRunOptions, match="priority"):
        runs.start("tests.square", [{"n": 1}], queue="jobs", priority=priority)
    assert JobRun.objects.count() == 0
    assert OutboxMessage.objects.count() == 0


def test_each_instance_message_carries_the_runs_priority(job_queue: Queue):
    run = runs.start("tests.square", [{"n": n} for n in range(3)], parallelism=2, priority=7,
                     queue="jobs")  # fmt: skip
    assert run.priority == 7
    run_one(run.instances.get(index=0))  # releases the third instance

    rows = OutboxMessage.objects.filter(queue=job_queue).order_by("id")
    assert [(r.body["index"], r.priority) for r in rows] == [(0, 7), (1, 7), (2, 7)]
    assert runs.start("tests.square", [{"n": 1}], queue="jobs").priority == 0  # the default


def test_a_priority_9_run_is_claimed_before_a_priority_0_run_on_one_database_queue(
    job_queue: Queue,
):
    """Both runs' first waves are published with no worker running; one fetch then takes
    the urgent run's instances, though the other run started first."""
    from queues.backends import get_backend
    from queues.relay import Relay

    routine = runs.start("tests.square", [{"n": n} for n in range(4)], parallelism=4, queue="jobs")
    urgent = runs.start("tests.square", [{"n": n} for n in range(4)], parallelism=4, priority=9,
                        queue="jobs")  # fmt: skip
    relay = Relay()
    try:
        assert relay.run_once() == 8
    finally:
        relay.close()

    with get_backend(job_queue) as backend:
        first = backend.fetch(max_messages=4, wait_seconds=0)
        then = backend.fetch(max_messages=4, wait_seconds=0)
    assert [d.json()["run_id"] for d in first] == [str(urgent.pk)] * 4
    assert [d.json()["index"] for d in first] == [0, 1, 2, 3]
    assert [d.json()["run_id"] for d in then] == [str(routine.pk)] * 4


def test_a_start_job_message_may_carry_a_priority(job_queue: Queue):
    from types import SimpleNamespace

    from jobs.handlers import start_job

    settled: list[str] = []
    ctx = SimpleNamespace(
        message_id="m-1",
        ack=lambda: settled.append("ack"),
        dead_letter=lambda reason: settled.append(reason),
        log=SimpleNamespace(info=lambda *args: None),
    )
    message = {"job": "tests.square", "params": [{"n": 1}], "queue": "jobs", "priority": 8}
    start_job(message, ctx)  # type: ignore[arg-type]
    assert settled == ["ack"]
    assert JobRun.objects.get(source="message:m-1").priority == 8


@pytest.mark.e2e
def test_a_priority_9_run_comes_first_on_a_rabbitmq_priority_queue(job_queue: Queue):
    """The same on RabbitMQ, read back with its own client: a queue declared with
    x-max-priority hands out the urgent run's instances before the routine run's."""
    from queues.backends import get_backend
    from queues.relay import Relay
    from tests.queues.backends.engines import RabbitMqEngine

    rabbitmq = RabbitMqEngine()
    try:
        queue = rabbitmq.make_queue(max_priority=10)
        with get_backend(queue) as backend:
            backend.provision()
        routine = runs.start("tests.square", [{"n": n} for n in range(3)], parallelism=3,
                             queue=queue)  # fmt: skip
        urgent = runs.start("tests.square", [{"n": n} for n in range(3)], parallelism=3,
                            priority=9, queue=queue)  # fmt: skip
        assert runs.summary(urgent)["priority-honoured"] is True
        relay = Relay()
        try:
            assert relay.run_once() == 6
        finally:
            relay.close()
        bodies = [json.loads(record.body) for record in rabbitmq.read_back(queue, 6)]
    finally:
        rabbitmq.cleanup()
    assert [b["run_id"] for b in bodies] == [str(urgent.pk)] * 3 + [str(routine.pk)] * 3


def test_a_message_from_before_retry_failed_does_not_run_the_instance_sent_again(
    job_queue: Queue,
):
    run = runs.start("tests.square", [{"n": 1}], queue="jobs")
    instance = run.instances.get()
    [first] = sent(job_queue)
    runs.cancel(run.pk)  # its message was sent, it never started: cancelled
    runs.retry_failed(run.pk)
    second = sent(job_queue)[-1]

    assert (first["dispatch"], second["dispatch"]) == (1, 2)
    assert begin(instance.pk, first["dispatch"]) is None  # the old message: acknowledged
    started = begin(instance.pk, second["dispatch"])
    assert started is not None
    assert started.attempts == 1
