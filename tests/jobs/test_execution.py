"""Runs executed by the platform's own moving parts — the outbox relay and a worker, in
threads, on the database queue — as a user sees them: every instance once, never more than
``parallelism`` at a time, failures retried then kept with their context, one completion."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from jobs import runs
from jobs.dispatch import instance_message
from jobs.models import JobRun
from jobs.results import results
from jobs.states import RunState
from queues.backends import get_backend
from queues.messages import OutgoingMessage
from queues.models import DatabaseMessage, OutboxMessage, Queue
from tests.jobs.conftest import wait_until_ended
from tests.jobs.sample_jobs import Calls
from tests.queues.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def completion_events(queue: Queue) -> list[dict]:
    return [m.body for m in OutboxMessage.objects.filter(queue=queue)]


def test_a_run_completes_every_instance_once_within_its_parallelism(
    platform: Callable[..., None], job_queue: Queue, events_queue: Queue, calls: Calls
):
    calls.reset(first_wave=3)
    platform(job_queue, concurrency=10)
    params = [{"n": n} for n in range(40)]

    run = wait_until_ended(
        runs.start("tests.square", params, parallelism=3, queue="jobs", on_complete="job-events")
    )

    assert run.state == RunState.COMPLETED
    assert sorted(calls.per_instance.values()) == [1] * 40
    assert calls.most_at_once == 3
    found = results(run, limit=100)
    assert found["failed"] == []
    assert sorted((r["params"]["n"], r["result"]["square"]) for r in found["succeeded"]) == [
        (n, n * n) for n in range(40)
    ]
    [event] = completion_events(events_queue)
    assert event["event"] == "job.completed"
    assert event["state"] == "completed"
    assert event["counts"]["completed"] == 40


def test_a_failing_instance_is_errored_after_its_attempts_and_the_rest_complete(
    platform: Callable[..., None], job_queue: Queue, calls: Calls
):
    platform(job_queue)
    params = [{"n": n, "fail": n == 2} for n in range(5)]

    run = wait_until_ended(runs.start("tests.square", params, parallelism=5, queue="jobs"))

    assert run.state == RunState.COMPLETED_WITH_ERRORS
    found = results(run)
    assert [r["params"]["n"] for r in found["succeeded"]] == [0, 1, 3, 4]
    [failed] = found["failed"]
    assert failed["params"] == {"n": 2, "fail": True}
    assert failed["error"]["type"] == "ValueError"
    assert failed["error"]["message"] == "instance 2 always fails"
    assert failed["error"]["attempts"] == job_queue.max_attempts == 3
    assert "always fails" in failed["error"]["traceback"]
    ran = {n: calls.per_instance[r["instance-id"]] for n, r in
           [(r["params"]["n"], r) for r in found["succeeded"] + found["failed"]]}  # fmt: skip
    assert ran == {0: 1, 1: 1, 2: 3, 3: 1, 4: 1}

    # Retry failed reruns only the errored instance.
    run, count = runs.retry_failed(run.pk)
    assert count == 1
    run = wait_until_ended(run)
    assert run.state == RunState.COMPLETED_WITH_ERRORS
    assert calls.per_instance[failed["instance-id"]] == 6
    assert sum(calls.per_instance.values()) == 4 + 6


def test_a_message_delivered_again_after_its_instance_completed_does_not_run_it_twice(
    platform: Callable[..., None], job_queue: Queue, calls: Calls
):
    platform(job_queue)
    run = wait_until_ended(runs.start("tests.square", [{"n": 7}], queue="jobs"))
    instance = run.instances.get()

    again = OutgoingMessage(str(uuid.uuid4()), instance_message(run, instance.pk, 0))
    with get_backend(job_queue) as backend:
        backend.publish([again])
    wait_for(
        lambda: not DatabaseMessage.objects.filter(message_id=again.message_id).exists(),
        20,
        "the repeated message to be acknowledged",
    )

    assert calls.per_instance[str(instance.pk)] == 1


def test_start_job_messages_start_one_run_each(
    platform: Callable[..., None], job_queue: Queue, calls: Calls
):
    platform(job_queue)
    message = OutgoingMessage(
        str(uuid.uuid4()),
        {"handler": "start_job", "job": "tests.square", "params": [{"n": 3}], "queue": "jobs"},
    )

    def deliver() -> None:
        with get_backend(job_queue) as backend:
            backend.publish([message])
        wait_for(
            lambda: not DatabaseMessage.objects.filter(message_id=message.message_id).exists(),
            20,
            "the start_job message to be acknowledged",
        )

    deliver()
    deliver()  # the same message again, as an at-least-once publisher may send it

    run = JobRun.objects.get(source=f"message:{message.message_id}")
    assert wait_until_ended(run).state == RunState.COMPLETED
    assert JobRun.objects.count() == 1


def test_a_start_job_message_for_an_unknown_job_is_dead_lettered(
    platform: Callable[..., None], job_queue: Queue
):
    platform(job_queue)
    message = OutgoingMessage(
        str(uuid.uuid4()), {"handler": "start_job", "job": "nope", "params": [{}]}
    )
    with get_backend(job_queue) as backend:
        backend.publish([message])

    dead = wait_for(
        lambda: DatabaseMessage.objects.filter(message_id=message.message_id, state="dead").first(),
        20,
        "the start_job message to be dead-lettered",
    )
    assert "No job is registered as 'nope'" in dead.last_error
    assert JobRun.objects.count() == 0
