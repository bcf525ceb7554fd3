"""Fixtures of the worker tests: a queue on each real engine (like Dramatiq's broker fixtures),
an isolated handler registry, and a running in-process worker.

On SQLite the test database is a file (see settings): workers are threads that write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from queues.backends import get_backend
from queues.models import Queue
from tests.queues.backends.engines import ENGINES, Engine
from tests.workers.helpers import FAST
from workers.registry import Registry
from workers.runtime import Worker, WorkerOptions

BROKER_PARAMS = [
    pytest.param("sqs", id="sqs", marks=pytest.mark.e2e),
    pytest.param("kafka", id="kafka", marks=pytest.mark.e2e),
    pytest.param("rabbitmq", id="rabbitmq", marks=pytest.mark.e2e),
]
ENGINE_PARAMS = [pytest.param("database", id="database"), *BROKER_PARAMS]


@pytest.fixture(params=ENGINE_PARAMS)
def engine(request: pytest.FixtureRequest, transactional_db: None) -> Iterator[Engine]:
    """Each real engine; transactional, because workers are threads with connections of
    their own (they must see committed rows)."""
    adapter = ENGINES[request.param]()
    try:
        yield adapter
    finally:
        adapter.cleanup()


@pytest.fixture
def make_queue(engine: Engine) -> Callable[..., Queue]:
    """A provisioned queue on the engine (visibility timeout 1 s unless given)."""

    def make(**options: Any) -> Queue:
        queue = engine.make_queue(**options)
        with get_backend(queue) as backend:
            backend.provision()
        return queue

    return make


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
