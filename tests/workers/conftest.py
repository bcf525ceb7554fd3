"""Fixtures of the worker tests: an isolated handler registry and a running in-process worker.
``engine`` and ``make_queue`` (a queue on each real engine) come from ``tests.fixtures.engines``;
here they run in transactional tests.

On SQLite the test database is a file (see settings): workers are threads that write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from queues.models import Queue
from tests.workers.helpers import FAST
from workers.options import WorkerOptions
from workers.registry import Registry
from workers.runtime import Worker


@pytest.fixture
def engine_database(transactional_db: None) -> None:
    """Transactional: workers are threads with connections of their own (they must see
    committed rows)."""


@pytest.fixture
def registry() -> Registry:
    return Registry()


@pytest.fixture
def start_worker(registry: Registry) -> Iterator[Callable[..., Worker]]:
    """Start an in-process worker (stopped at teardown without waiting for handlers)."""
    started: list[Worker] = []

    def start(queue: Queue, **options: Any) -> Worker:
        worker = Worker(queue, registry=registry, options=WorkerOptions(**{**FAST, **options}))
        worker.start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop(drain_seconds=0)
