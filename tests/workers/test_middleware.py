"""The middleware dispatcher and the view middleware gets of a worker (the middleware's own
behaviour is tested through a running worker in test_runtime.py, retries in test_retries.py)."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from typing import Any

import pytest

from queues.backends.base import Backend
from queues.messages import Delivery
from queues.models import Queue
from workers.events import EventSink
from workers.job import Job, Outcome, Settlement
from workers.middleware import Heartbeat, Hooks, Metrics, Middleware, WorkerView
from workers.models import WorkerProcess
from workers.options import WorkerOptions
from workers.runtime import Worker, default_middleware


def view(queue: Queue | None = None, process_id: int | None = None) -> WorkerView:
    return WorkerView(
        queue=queue or Queue(name="q", type="database"),
        options=WorkerOptions(),
        process_id=process_id,
        events=EventSink(),
        in_flight={},
        leases=True,
    )


def job() -> Job:
    return Job(1, Delivery(str(uuid.uuid4()), b"{}", 1, {}, None), 0.0)


class Recording(Middleware):
    def __init__(self, name: str, calls: list[str], fail: bool = False) -> None:
        self.name = name
        self.calls = calls
        self.fail = fail

    def _call(self, hook: str) -> None:
        self.calls.append(f"{self.name}.{hook}")
        if self.fail:
            raise RuntimeError(f"{self.name} broke")

    def before_worker_boot(self, worker: WorkerView) -> None:
        self._call("before_worker_boot")

    def after_process_message(self, worker: WorkerView, job: Job) -> None:
        self._call("after_process_message")

    def after_settle(self, worker: WorkerView, job: Job, error: Exception | None) -> None:
        self._call("after_settle")


class Deadline(Middleware):
    def __init__(self, due: float | None, fail: bool = False) -> None:
        self.due = due
        self.fail = fail

    def on_consumer_tick(self, worker: WorkerView, backend: Backend) -> float | None:
        if self.fail:
            raise RuntimeError("tick broke")
        return self.due


def test_every_hook_runs_over_the_middleware_in_list_order() -> None:
    calls: list[str] = []
    hooks = Hooks([Recording("a", calls), Recording("b", calls)])
    made = job()
    hooks.after_process_message(view(), made)
    hooks.after_settle(view(), made, None)
    hooks.after_fetch(view(), made)  # not overridden: the no-op default
    assert calls == [
        "a.after_process_message",
        "b.after_process_message",
        "a.after_settle",
        "b.after_settle",
    ]


def test_a_failing_hook_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []
    hooks = Hooks([Recording("a", calls, fail=True), Recording("b", calls)])
    with caplog.at_level(logging.ERROR, logger="workers.runtime"):
        hooks.after_settle(view(), job(), None)
    assert calls == ["a.after_settle", "b.after_settle"]
    assert "Middleware Recording.after_settle failed" in caplog.text


def test_a_failing_boot_hook_stops_the_start() -> None:
    calls: list[str] = []
    hooks = Hooks([Recording("a", calls, fail=True), Recording("b", calls)])
    with pytest.raises(RuntimeError, match="a broke"):
        hooks.before_worker_boot(view())
    assert calls == ["a.before_worker_boot"]


def test_the_consumer_waits_for_the_soonest_deadline_and_skips_a_failing_tick() -> None:
    hooks = Hooks([Deadline(None), Deadline(3.0), Deadline(None, fail=True), Deadline(1.5)])
    backend: Any = object()
    assert hooks.next_deadline(view(), backend) == 1.5
    assert Hooks([Deadline(None)]).next_deadline(view(), backend) is None


def test_middleware_gets_a_read_only_view_of_the_worker() -> None:
    worker = Worker(Queue(name="q", type="database"), middleware=[])
    with pytest.raises(dataclasses.FrozenInstanceError):
        worker.view.process_id = 7  # type: ignore[misc]
    with pytest.raises(TypeError):
        worker.view.in_flight[1] = job()  # type: ignore[index]
    made = job()
    worker.in_flight[made.seq] = made
    assert dict(worker.view.in_flight) == {made.seq: made}, "a live view of the worker's map"
    assert worker.view.events is worker.events
    assert worker.view.leases is True


def test_the_default_heartbeat_reads_the_default_metrics() -> None:
    middleware = default_middleware(WorkerOptions())
    (heartbeat,) = [m for m in middleware if isinstance(m, Heartbeat)]
    (metrics,) = [m for m in middleware if isinstance(m, Metrics)]
    assert heartbeat.metrics is metrics


@pytest.mark.django_db
def test_the_heartbeat_stores_the_counters_of_its_metrics_on_the_process_row() -> None:
    queue = Queue.objects.create(name="beats", type="database")
    row = WorkerProcess.objects.create(queue=queue, host="h", pid=1, concurrency=1)
    metrics = Metrics()
    acked = job()
    acked.settlement = Settlement.ACK
    acked.outcome = Outcome.ack()
    metrics.after_settle(view(queue), acked, None)
    Heartbeat(metrics=metrics).after_worker_shutdown(view(queue, process_id=row.pk))
    row.refresh_from_db()
    assert (row.processed, row.failed, row.stopped_at is not None) == (1, 0, True)
