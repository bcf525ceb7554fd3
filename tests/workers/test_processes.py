"""Real ``manage.py runworker`` / ``runworkers`` processes against every real engine.

The children use this test's database: on PostgreSQL the per-process test database (the
tests are transactional so that the children see the rows), on SQLite the file test database
that ``conftest.py`` asks for (an in-memory database is invisible to other processes). They
load their handlers from ``tests.workers.process_handlers``, which records each call in a
file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.db import connection

from queues.backends import get_backend
from queues.models import Queue, QueueType
from tests.queues.backends.engines import Engine
from tests.workers.helpers import holds_for, publish, wait_for
from workers.models import WorkerProcess

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = "tests.workers.process_handlers"

MakeQueue = Callable[..., Queue]


def child_database_url() -> str:
    """This test's database, for a child process."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    user = quote(settings["USER"] or "", safe="")
    password = quote(settings["PASSWORD"] or "", safe="")
    return f"postgres://{user}:{password}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"


class Children:
    """Spawns management commands with the test database and a record file; kills what is
    left at the end of the test."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.record_file = tmp_path / "record.jsonl"
        self.go_file = tmp_path / "go"
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp_path / f"child-{len(self.processes)}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env={
                **os.environ,
                "DATABASE_URL": child_database_url(),
                "QM_TEST_RECORD": str(self.record_file),
                "QM_TEST_GO": str(self.go_file),
                # A SIGKILLed Kafka consumer keeps its partitions this long (the broker's least).
                "QUAYMASTER_KAFKA_SESSION_TIMEOUT_MS": "6000",
                "PYTHONUNBUFFERED": "1",
                **env,
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.processes.append(process)
        return process

    def runworker(self, queue: Queue, *args: str, **env: str) -> subprocess.Popen[bytes]:
        return self.start(
            "runworker",
            queue.name,
            "--handlers-module",
            HANDLERS,
            "--poll-seconds",
            "0.5",
            *args,
            **env,
        )

    def records(self) -> list[dict[str, Any]]:
        if not self.record_file.exists():
            return []
        return [json.loads(line) for line in self.record_file.read_text().splitlines()]

    def done(self) -> list[dict[str, Any]]:
        return [r for r in self.records() if r["what"] == "done"]

    def output(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.tmp_path.glob("child-*.log"))
        )

    def cleanup(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(10)


@pytest.fixture
def children(tmp_path: Path) -> Iterator[Children]:
    spawned = Children(tmp_path)
    try:
        yield spawned
    finally:
        spawned.cleanup()


def booted(process: subprocess.Popen[bytes], children: Children, timeout: float = 30) -> None:
    """The child registered its WorkerProcess row (at boot, before its first fetch)."""

    def probe() -> bool:
        assert process.poll() is None, f"the worker exited early:\n{children.output()}"
        return WorkerProcess.objects.filter(pid=process.pid).exists()

    wait_for(probe, timeout, f"worker {process.pid} to boot")


def consumers_ready(engine: Engine, queue: Queue, count: int) -> None:
    """Wait until ``count`` consumers share the queue (where the engine can tell)."""
    if engine.type == QueueType.RABBITMQ:
        wait_for(lambda: get_backend(queue).stats().consumers == count, 20, f"{count} consumers")
    elif engine.type == QueueType.KAFKA:
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": engine.url()})

        def assigned() -> bool:
            (future,) = admin.describe_consumer_groups([f"quaymaster.{queue.name}"]).values()
            group = future.result(timeout=10)
            members = [m for m in group.members if m.assignment.topic_partitions]
            return len(members) == count and str(group.state).endswith("STABLE")

        wait_for(assigned, 30, f"{count} Kafka consumers with partitions")


def test_two_worker_processes_share_a_queue_and_process_each_message_once(
    engine: Engine, make_queue: MakeQueue, children: Children
) -> None:
    queue = make_queue(
        visibility_timeout=5, **({"partitions": 4} if engine.type == "kafka" else {})
    )
    first = children.runworker(queue, "--concurrency", "2")
    second = children.runworker(queue, "--concurrency", "2")
    booted(first, children)
    booted(second, children)
    consumers_ready(engine, queue, 2)

    ids = publish(
        queue, *[{"handler": "record", "n": n, "work_ms": 40} for n in range(40)], keyed=True
    )
    wait_for(lambda: {r["id"] for r in children.done()} >= set(ids), 60, "every message done")

    done = children.done()
    by_id: dict[str, list[dict[str, Any]]] = {}
    for line in done:
        by_id.setdefault(line["id"], []).append(line)
    for message_id, lines in by_id.items():
        assert len(lines) == 1 or all(line["attempt"] > 1 for line in lines[1:]), (
            f"{message_id} processed twice without a redelivery: {lines}"
        )
    pids = {line["pid"] for line in done}
    assert pids == {first.pid, second.pid}, "both processes took a share of the work"


def test_a_worker_killed_mid_handler_loses_nothing(
    engine: Engine, make_queue: MakeQueue, children: Children
) -> None:
    queue = make_queue(visibility_timeout=2)
    ids = publish(queue, *[{"handler": "hang", "n": n} for n in range(3)])
    doomed = children.runworker(queue, "--concurrency", "3", QM_TEST_HANG="1")
    wait_for(
        lambda: len([r for r in children.records() if r["pid"] == doomed.pid]) == 3,
        30,
        "the three handlers to start",
    )
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(10)

    survivor = children.runworker(queue, "--concurrency", "3")
    wait_for(lambda: {r["id"] for r in children.done()} == set(ids), 40, "the redeliveries")

    done = children.done()
    assert {r["pid"] for r in done} == {survivor.pid}
    assert len(done) == 3
    if engine.type == QueueType.KAFKA:
        assert all(r["attempt"] == 1 for r in done), "Kafka does not count crash redeliveries"
    else:
        assert all(r["attempt"] == 2 for r in done)


def test_sigterm_drains_in_flight_handlers_and_fetches_nothing_more(
    engine: Engine, make_queue: MakeQueue, children: Children
) -> None:
    queue = make_queue(visibility_timeout=5)
    (slow_id,) = publish(queue, {"handler": "wait_for_go"})
    worker = children.runworker(queue, "--concurrency", "2", "--drain-seconds", "20")
    wait_for(lambda: children.records(), 30, "the handler to start")

    worker.send_signal(signal.SIGTERM)
    wait_for(
        lambda: WorkerProcess.objects.filter(pid=worker.pid, draining_at__isnull=False).exists(),
        10,
        "the worker to start draining",
    )
    (late_id,) = publish(queue, {"handler": "record"})  # a free slot, but no more fetching
    holds_for(
        lambda: late_id not in {r["id"] for r in children.records()},
        1.0,
        "not fetching while draining",
    )
    children.go_file.touch()

    assert worker.wait(30) == 0, children.output()
    assert [(r["id"], r["what"]) for r in children.records()] == [
        (slow_id, "started"),
        (slow_id, "done"),
    ]
    row = WorkerProcess.objects.get(pid=worker.pid)
    assert row.stopped_at is not None
    assert row.processed == 1
    assert engine.unacknowledged(queue, get_backend(queue)) == 1, "the late message waits"
    (left,) = engine.read_back(queue, 1) if engine.type != QueueType.KAFKA else [None]
    if left is not None:
        assert left.message_id == late_id


@pytest.mark.parametrize("engine", ["database"], indirect=True)
def test_runworkers_restarts_a_killed_worker_and_follows_the_queue_table(
    engine: Engine, make_queue: MakeQueue, children: Children
) -> None:
    serving = make_queue()
    later = make_queue(enabled=False)
    supervisor = children.start(
        "runworkers",
        "--refresh-seconds",
        "0.3",
        "--restart-delay",
        "0.2",
        "--drain-seconds",
        "5",
        "--handlers-module",
        HANDLERS,
    )

    def worker_of(queue: Queue, exclude: set[int] = frozenset()) -> WorkerProcess | None:  # type: ignore[assignment]
        assert supervisor.poll() is None, children.output()
        return (
            WorkerProcess.objects.filter(queue=queue, stopped_at__isnull=True)
            .exclude(pid__in=exclude)
            .first()
        )

    first = wait_for(lambda: worker_of(serving), 30, "a worker for the enabled queue")
    assert worker_of(later) is None
    os.kill(first.pid, signal.SIGKILL)
    second = wait_for(lambda: worker_of(serving, {first.pid}), 30, "the worker's restart")
    assert second.pid != first.pid

    later.enabled = True
    later.save()
    third = wait_for(lambda: worker_of(later), 30, "a worker for the newly enabled queue")
    (message_id,) = publish(later, {"handler": "record"})
    wait_for(lambda: [r for r in children.done() if r["id"] == message_id], 30, "its message")

    serving.enabled = False
    serving.save()
    wait_for(
        lambda: WorkerProcess.objects.filter(pk=second.pk, stopped_at__isnull=False).exists(),
        30,
        "the disabled queue's worker to stop",
    )

    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(30) == 0, children.output()
    third.refresh_from_db()
    assert third.stopped_at is not None, "SIGTERM reached the children, which drained"
