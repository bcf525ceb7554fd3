"""Job runs executed by real processes on every engine: two ``manage.py runworker`` processes
on the run's queue and a ``manage.py relay`` process, against this test's database (SQLite
file or PostgreSQL) — as issue 12's "What the tests prove" asks.

The job (``tests.jobs.process_jobs``, loaded by the children through
``QUAYMASTER_JOB_MODULES``) records every call in a file and counts the calls that run at
once across processes, so the tests see what the children did, not only the state table.
The database engine runs on both suites; the brokers carry ``e2e``.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobs import runs
from jobs.models import JobRun
from jobs.results import results
from jobs.states import TERMINAL_RUN_STATES, InstanceState, RunState
from queues.backends import get_backend
from queues.models import OutboxMessage, OutboxState, Queue, QueueType
from tests.fixtures.engines import MakeQueue
from tests.jobs import process_jobs
from tests.queues.backends.engines import Engine
from tests.queues.helpers import wait_for
from tests.workers.helpers import holds_for
from tests.workers.test_processes import Children, booted, consumers_ready

JOB_MODULES = {"QUAYMASTER_JOB_MODULES": "tests.jobs.process_jobs"}
#: Instances of the big run. On this 2-core machine (shared) a broker did 1,000 in 29-41 s,
#: the bookkeeping on PostgreSQL being the bound: brokers take 500, the database queue 1,000.
INSTANCES: dict[str, int] = {
    QueueType.DATABASE: 1_000,
    QueueType.SQS: 500,
    QueueType.KAFKA: 500,
    QueueType.RABBITMQ: 500,
}


@pytest.fixture
def engine_database(transactional_db: None) -> None:
    """Transactional: the children read and write this test's database (committed rows)."""


@pytest.fixture
def children(tmp_path: Path) -> Iterator[Children]:
    spawned = Children(tmp_path)
    try:
        yield spawned
    finally:
        spawned.cleanup()


def worker(
    children: Children, queue: Queue, concurrency: int, **env: str
) -> subprocess.Popen[bytes]:
    """``manage.py runworker`` on the run's queue, with the test job loaded."""
    return children.runworker(
        queue,
        "--concurrency",
        str(concurrency),
        "--retry-base-delay",
        "0.1",
        "--retry-max-delay",
        "0.5",
        **JOB_MODULES,
        **env,
    )


def relay(children: Children) -> subprocess.Popen[bytes]:
    return children.start("relay", "--poll-seconds", "0.05", "--lease-seconds", "5")


def two_workers(
    engine: Engine, children: Children, queue: Queue, concurrency: int, **env: str
) -> list[subprocess.Popen[bytes]]:
    """Two workers sharing the queue, both consuming (Kafka: both hold partitions) before the
    run starts, so no rebalance hands a running instance's message to the other one."""
    pair = [worker(children, queue, concurrency, **env) for _ in range(2)]
    for process in pair:
        booted(process, children)
    consumers_ready(engine, queue, 2)
    return pair


def ended(run: JobRun, children: Children, timeout: float) -> JobRun:
    """The run, once it has ended; every child not killed by the test must stay up."""

    def probe() -> JobRun | None:
        exited = [
            p.args for p in children.processes if p.returncode is None and p.poll() is not None
        ]
        assert not exited, f"{exited} exited:\n{children.output()}"
        run.refresh_from_db()
        return run if run.state in TERMINAL_RUN_STATES else None

    found: JobRun = wait_for(probe, timeout, f"run {run.pk} to end")
    return found


def calls(children: Children, what: str) -> list[dict[str, Any]]:
    return [r for r in children.records() if r["what"] == what]


def the_one_completion_event(engine: Engine, events: Queue, run: JobRun) -> dict[str, Any]:
    """The run's ``job.completed`` message, read back with the engine's own client after the
    relay published it; it must be the only message there."""
    [row] = OutboxMessage.objects.filter(queue=events)
    wait_for(
        lambda: OutboxMessage.objects.filter(pk=row.pk, state=OutboxState.PUBLISHED).exists(),
        20,
        "the relay to publish job.completed",
    )
    with get_backend(events) as backend:
        assert engine.unacknowledged(events, backend) == 1
    [record] = engine.read_back(events, 1)
    assert record.message_id == str(row.message_id)
    body: dict[str, Any] = json.loads(record.body)
    assert body["event"] == "job.completed"
    assert body["run_id"] == str(run.pk)
    return body


def test_a_big_run_on_two_worker_processes_completes_each_instance_once(
    engine: Engine, make_queue: MakeQueue, children: Children
) -> None:
    total = INSTANCES[engine.type]
    queue = make_queue(visibility_timeout=30, max_attempts=3)
    events = make_queue()
    workers = two_workers(engine, children, queue, concurrency=10)
    relay(children)

    run = runs.start(
        process_jobs.JOB,
        [{"n": n} for n in range(total)],
        parallelism=50,
        queue=queue,
        on_complete=events,
    )
    run = ended(run, children, timeout=90)

    assert run.state == RunState.COMPLETED, children.output()
    # The state table: every instance completed, on its first attempt.
    assert Counter(run.instances.values_list("state", "attempts")) == {
        (InstanceState.COMPLETED, 1): total
    }
    assert (run.total, run.released, run.finished, run.completed) == (total,) * 4
    assert (run.errored, run.cancelled) == (0, 0)
    # The children: each instance's function called once, and returned once.
    started, done = calls(children, "started"), calls(children, "done")
    ids = set(run.instances.values_list("pk", flat=True))
    assert Counter(r["instance"] for r in started) == {str(pk): 1 for pk in ids}
    assert Counter(r["instance"] for r in done) == {str(pk): 1 for pk in ids}
    assert {r["pid"] for r in done} == {w.pid for w in workers}, "both workers took a share"
    # Results: every one beside its parameters, nothing failed.
    found = results(run, limit=total)
    assert (found["succeeded-count"], found["failed-count"]) == (total, 0)
    assert sorted(
        (r["params"]["n"], r["result"]["n"], r["result"]["square"]) for r in found["succeeded"]
    ) == [(n, n, n * n) for n in range(total)]
    # One job.completed, on the engine itself.
    event = the_one_completion_event(engine, events, run)
    assert event["state"] == "completed"
    assert event["job"] == process_jobs.JOB
    assert event["counts"] == {
        "total": total,
        "pending": 0,
        "in_progress": 0,
        "completed": total,
        "errored": 0,
        "cancelled": 0,
    }


def test_parallelism_is_never_exceeded_across_worker_processes(
    engine: Engine, make_queue: MakeQueue, children: Children
) -> None:
    counter = children.tmp_path / "counter.json"
    queue = make_queue(visibility_timeout=30, max_attempts=3)
    # More slots than five across the two processes: only the run's parallelism holds them to
    # five. Where a worker fetches no more than its free slots (database, SQS), three each, so
    # the first wave runs in both processes at once; RabbitMQ pushes and Kafka assigns
    # partitions, so the first wave may all go to one process: five each there.
    fetch_bounded = engine.type in (QueueType.DATABASE, QueueType.SQS)
    pair = two_workers(
        engine, children, queue, 3 if fetch_bounded else 5, QM_TEST_COUNTER=str(counter)
    )
    relay(children)
    total = 30

    run = runs.start(
        process_jobs.JOB,
        [{"n": n, "wait_go": n < 5, "hold_ms": 30} for n in range(total)],
        parallelism=5,
        queue=queue,
    )
    # The first wave waits for "go": five calls run at once, and no sixth starts meanwhile.
    wait_for(lambda: process_jobs.read_counter(counter)["running"] == 5, 30, "five at once")
    holds_for(lambda: len(calls(children, "started")) == 5, 0.5, "nothing beyond the five")
    if fetch_bounded:
        assert {r["pid"] for r in calls(children, "started")} == {p.pid for p in pair}
    children.go_file.touch()
    run = ended(run, children, timeout=45)

    assert run.state == RunState.COMPLETED, children.output()
    assert process_jobs.read_counter(counter) == {"running": 0, "most": 5, "calls": total}
    assert Counter(r["instance"] for r in calls(children, "done")) == {
        str(pk): 1 for pk in run.instances.values_list("pk", flat=True)
    }
    assert Counter(run.instances.values_list("state", flat=True)) == {"completed": total}


def test_a_worker_killed_mid_instance_loses_nothing(
    engine: Engine, make_queue: MakeQueue, children: Children
) -> None:
    queue = make_queue(visibility_timeout=2, max_attempts=3)
    events = make_queue()
    relay(children)
    total = 6

    run = runs.start(
        process_jobs.JOB,
        [{"n": n} for n in range(total)],
        parallelism=2,
        queue=queue,
        on_complete=events,
    )
    doomed = worker(children, queue, 2, QM_TEST_HANG="1")
    wait_for(
        lambda: len([r for r in calls(children, "started") if r["pid"] == doomed.pid]) == 2,
        30,
        "the first two instances to start in the doomed worker",
    )
    killed = {r["instance"] for r in calls(children, "started")}
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(10)
    assert run.instances.filter(pk__in=killed, state=InstanceState.IN_PROGRESS).count() == 2

    survivor = worker(children, queue, 2)
    run = ended(run, children, timeout=50)

    assert run.state == RunState.COMPLETED, children.output()
    attempts = dict(run.instances.values_list("pk", "attempts"))
    assert {str(pk): n for pk, n in attempts.items()} == {
        str(pk): 2 if str(pk) in killed else 1 for pk in attempts
    }
    assert Counter(run.instances.values_list("state", flat=True)) == {"completed": total}
    done = calls(children, "done")
    assert Counter(r["instance"] for r in done) == {str(pk): 1 for pk in attempts}
    assert {r["pid"] for r in done} == {survivor.pid}
    started = Counter(r["instance"] for r in calls(children, "started"))
    assert started == {str(pk): 2 if str(pk) in killed else 1 for pk in attempts}
    assert sorted(r["params"]["n"] for r in results(run)["succeeded"]) == list(range(total))
    assert the_one_completion_event(engine, events, run)["counts"]["completed"] == total
