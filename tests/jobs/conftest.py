"""Fixtures of the jobs tests: a database queue for instances, one for completion events,
and the platform's moving parts in threads — the outbox relay and a worker with the jobs
handler — against the test database."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connections

from jobs.dispatch import INSTANCE_HANDLER
from jobs.execution import run_instance
from jobs.handlers import start_job
from jobs.models import JobRun
from jobs.states import TERMINAL_RUN_STATES
from queues.models import Queue
from queues.relay import Relay
from tests.jobs import sample_jobs
from tests.queues.helpers import wait_for
from workers.registry import Registry
from workers.runtime import Worker, WorkerOptions

FAST = {
    "poll_seconds": 0.2,
    "busy_poll_seconds": 0.02,
    "retry_base_delay": 0.05,
    "retry_max_delay": 0.2,
    "heartbeat_seconds": 0.5,
    "drain_seconds": 5.0,
}


@pytest.fixture
def calls() -> sample_jobs.Calls:
    sample_jobs.calls.reset()
    return sample_jobs.calls


def make_queue(name: str, **options: Any) -> Queue:
    options.setdefault("visibility_timeout", 2)
    queue = Queue(name=name, type="database", **options)
    queue.full_clean()
    queue.save()
    return queue


@pytest.fixture
def job_queue(db: None) -> Queue:
    return make_queue("jobs", max_attempts=3)


@pytest.fixture
def events_queue(db: None) -> Queue:
    return make_queue("job-events")


@pytest.fixture
def platform(transactional_db: None) -> Iterator[Callable[[Queue], None]]:
    """Start the relay and a worker (concurrency 10) on a queue, in threads."""
    stopping = threading.Event()
    threads: list[threading.Thread] = []
    workers: list[Worker] = []

    def start(queue: Queue, concurrency: int = 10) -> None:
        if not threads:
            relay = Relay(poll_seconds=0.05)

            def relaying() -> None:
                try:
                    relay.run(stopping)
                finally:
                    connections.close_all()

            thread = threading.Thread(target=relaying, daemon=True)
            thread.start()
            threads.append(thread)
        registry = Registry()
        registry.handler(INSTANCE_HANDLER)(run_instance)
        registry.handler("start_job")(start_job)
        worker = Worker(
            queue,
            registry=registry,
            options=WorkerOptions(**{**FAST, "concurrency": concurrency}),
        )
        worker.start()
        workers.append(worker)

    yield start
    for worker in workers:
        worker.stop(drain_seconds=0)
    stopping.set()
    for thread in threads:
        thread.join(timeout=10)


def wait_until_ended(run: JobRun, timeout: float = 60.0) -> JobRun:
    def ended() -> JobRun | None:
        run.refresh_from_db()
        return run if run.state in TERMINAL_RUN_STATES else None

    found: JobRun = wait_for(ended, timeout, f"run {run.pk} to end")
    return found
