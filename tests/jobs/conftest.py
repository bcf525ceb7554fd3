"""Fixtures of the jobs tests: a database queue for instances, one for completion events,
and the platform's moving parts in threads — the outbox relay and a worker with the jobs
handler — against the test database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from jobs.models import JobRun
from jobs.states import TERMINAL_RUN_STATES
from queues.models import Queue
from tests.jobs import sample_jobs
from tests.jobs.moving_parts import StartWorker, platform_threads
from tests.queues.helpers import wait_for


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
def platform(transactional_db: None) -> Iterator[StartWorker]:
    """Start the relay and a worker (concurrency 10) on a queue, in threads."""
    with platform_threads() as start:
        yield start


def wait_until_ended(run: JobRun, timeout: float = 60.0) -> JobRun:
    def ended() -> JobRun | None:
        run.refresh_from_db()
        return run if run.state in TERMINAL_RUN_STATES else None

    found: JobRun = wait_for(ended, timeout, f"run {run.pk} to end")
    return found
