"""Every backend behaviour runs against each real engine (like Dramatiq's broker fixtures).

The database engine runs on both suites (SQLite and PostgreSQL); the others carry ``e2e`` and
need the services that ``platform/services up`` starts.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from queues.backends import get_backend
from queues.backends.base import Backend
from queues.models import Queue
from tests.queues.backends.engines import ENGINES, Engine

BROKER_PARAMS = [
    pytest.param("sqs", id="sqs", marks=pytest.mark.e2e),
    pytest.param("kafka", id="kafka", marks=pytest.mark.e2e),
    pytest.param("rabbitmq", id="rabbitmq", marks=pytest.mark.e2e),
]
ENGINE_PARAMS = [pytest.param("database", id="database"), *BROKER_PARAMS]


@pytest.fixture(params=ENGINE_PARAMS)
def engine(request: pytest.FixtureRequest, db: None) -> Iterator[Engine]:
    adapter = ENGINES[request.param]()
    try:
        yield adapter
    finally:
        adapter.cleanup()


@pytest.fixture(params=BROKER_PARAMS)
def broker(request: pytest.FixtureRequest) -> Engine:
    """The engines that are a separate server (not the database)."""
    return ENGINES[request.param]()


@pytest.fixture
def queue(engine: Engine) -> Queue:
    """A provisioned queue with a 1 s visibility timeout."""
    queue = engine.make_queue()
    with get_backend(queue) as backend:
        backend.provision()
    return queue


@pytest.fixture
def backend(queue: Queue) -> Iterator[Backend]:
    backend = get_backend(queue)
    try:
        yield backend
    finally:
        backend.close()
