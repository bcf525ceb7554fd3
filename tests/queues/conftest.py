"""Every backend behaviour runs against each real engine: ``engine`` and ``broker`` come from
``tests.fixtures.engines`` (shared with the worker tests); here, a provisioned queue on the
engine and a backend for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from queues.backends import get_backend
from queues.backends.base import Backend
from queues.models import Queue
from tests.fixtures.engines import MakeQueue


@pytest.fixture
def queue(make_queue: MakeQueue) -> Queue:
    """A provisioned queue with a 1 s visibility timeout."""
    return make_queue()


@pytest.fixture
def backend(queue: Queue) -> Iterator[Backend]:
    backend = get_backend(queue)
    try:
        yield backend
    finally:
        backend.close()
