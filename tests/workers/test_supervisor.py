"""``runworkers``' reconciliation, with fake child processes and a clock the test moves (the
real processes are in test_processes.py)."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from queues.models import Queue, QueueType
from workers.supervisor import Supervisor, SupervisorOptions

pytestmark = pytest.mark.django_db


class FakeProcess:
    pids = iter(range(10_000, 20_000))

    def __init__(self, command: list[str]) -> None:
        self.command = command
        self.pid = next(self.pids)
        self.returncode: int | None = None
        self.signals: list[int] = []

    def poll(self) -> int | None:
        return self.returncode

    def kill(self) -> None:
        self.returncode = -9

    def wait(self, timeout: float | None = None) -> int:
        assert self.returncode is not None
        return self.returncode


class Harness:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, **options: Any) -> None:
        self.now = 0.0
        self.spawned: list[FakeProcess] = []
        self.supervisor = Supervisor(
            SupervisorOptions(refresh_seconds=1, restart_delay=1, max_restart_delay=8, **options),
            spawn=self._spawn,  # type: ignore[arg-type]
            clock=lambda: self.now,
        )

        def kill(pid: int, signum: int) -> None:
            process = next(p for p in self.spawned if p.pid == pid)
            process.signals.append(signum)
            if signum == signal.SIGTERM:
                process.returncode = 0

        monkeypatch.setattr("workers.supervisor.os.kill", kill)

    def _spawn(self, command: list[str]) -> FakeProcess:
        process = FakeProcess(command)
        self.spawned.append(process)
        return process

    def at(self, now: float) -> None:
        self.now = now
        self.supervisor.reconcile()

    def running(self) -> list[FakeProcess]:
        return [c.process for c in self.supervisor.children.values()]  # type: ignore[misc]


def queue(name: str, **fields: Any) -> Queue:
    return Queue.objects.create(name=name, type=QueueType.DATABASE, **fields)


def test_one_child_per_enabled_queue_with_the_worker_arguments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    orders = queue("orders")
    queue("paused", enabled=False)
    harness = Harness(
        monkeypatch, processes_per_queue=2, concurrency=4, worker_args=["--handlers-module", "m"]
    )
    harness.at(0)
    assert len(harness.spawned) == 2
    command = harness.spawned[0].command
    assert command[2:4] == ["runworker", str(orders.pk)]
    assert command[-4:] == ["--concurrency", "4", "--handlers-module", "m"]


def test_a_crashed_child_restarts_with_exponential_backoff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    queue("orders")
    harness = Harness(monkeypatch)
    harness.at(0)
    restarts = []
    for _crash in range(5):
        harness.running()[0].returncode = 1
        crashed_at = harness.now + 0.1
        harness.at(crashed_at)
        assert not harness.running()
        while not harness.running():
            harness.at(harness.now + 0.25)
        restarts.append(round(harness.now - crashed_at, 2))
    assert restarts == [1.0, 2.0, 4.0, 8.0, 8.0]


def test_a_child_that_ran_long_enough_restarts_quickly_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    queue("orders")
    harness = Harness(monkeypatch, stable_seconds=60)
    harness.at(0)
    for _ in range(3):  # three quick crashes: the next restart would wait 8 s
        harness.running()[0].returncode = 1
        harness.at(harness.now + 0.1)
        harness.at(harness.now + 10)
    harness.at(harness.now + 100)  # a long, healthy run
    harness.running()[0].returncode = 1
    harness.at(harness.now + 0.1)
    harness.at(harness.now + 1)
    assert harness.running(), "restarted after 1 s, not 8 s"


def test_queues_enabled_disabled_changed_or_deleted_are_followed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    orders = queue("orders")
    invoices = queue("invoices", enabled=False)
    harness = Harness(monkeypatch)
    harness.at(0)
    (first,) = harness.spawned

    invoices.enabled = True
    invoices.save()
    harness.at(0.5)
    assert len(harness.spawned) == 1, "the table is read again only every refresh_seconds"
    harness.at(1.0)
    assert len(harness.spawned) == 2

    orders.visibility_timeout = 60
    orders.save()  # a changed queue: its worker is replaced
    harness.at(2.0)
    assert first.signals == [signal.SIGTERM]
    assert len(harness.spawned) == 3

    invoices.delete()
    harness.at(3.0)
    assert harness.spawned[1].signals == [signal.SIGTERM]
    assert [p.pid for p in harness.running()] == [harness.spawned[2].pid]


def test_shutdown_stops_every_child(monkeypatch: pytest.MonkeyPatch) -> None:
    queue("orders")
    queue("invoices")
    harness = Harness(monkeypatch)
    harness.at(0)
    harness.supervisor.shutdown()
    assert all(p.signals == [signal.SIGTERM] for p in harness.spawned)
    assert not harness.supervisor.children
