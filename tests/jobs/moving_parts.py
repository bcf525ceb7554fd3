"""The platform's moving parts in threads, for tests that need instances really executed: the
outbox relay and workers with the jobs handlers, against the test database (the same one a
live server serves). Used by the ``platform`` fixture of the jobs tests and by the browser
tests of the jobs pages."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connections

from jobs.dispatch import INSTANCE_HANDLER
from jobs.execution import run_instance
from jobs.handlers import start_job
from queues.models import Queue
from queues.relay import Relay
from workers.registry import Registry
from workers.runtime import Worker, WorkerOptions

#: Short polls and backoffs, so a test's instances and retries go by in milliseconds.
FAST: dict[str, Any] = {
    "poll_seconds": 0.2,
    "busy_poll_seconds": 0.02,
    "retry_base_delay": 0.05,
    "retry_max_delay": 0.2,
    "heartbeat_seconds": 0.5,
    "drain_seconds": 5.0,
}

#: ``start(queue, concurrency=10)``: a worker on that queue (and the relay, the first time).
StartWorker = Callable[..., None]


@contextmanager
def platform_threads() -> Iterator[StartWorker]:
    """Yield ``start``, which runs the relay (once) and a worker on a queue, in threads; on
    exit, stop the workers, then the relay. The caller provides the (transactional) database."""
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

    try:
        yield start
    finally:
        for worker in workers:
            worker.stop(drain_seconds=0)
        stopping.set()
        for thread in threads:
            thread.join(timeout=10)
