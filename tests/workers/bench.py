"""No-op handler throughput of one worker, per engine and concurrency (run by hand, not a test).

    eval "$(platform/services env)"
    .venv/bin/python -m tests.workers.bench --engines database sqs kafka rabbitmq \
        --concurrency 1 10 --messages 2000

Runs in a throw-away test database (created with migrations and dropped afterwards, as the
test runner does), with the worker's default middleware (heartbeat, lifecycle log, leases,
retries): the numbers include what a real worker pays besides the handler. Messages are
published first; the clock starts once the worker has acknowledged the first 5% (so a Kafka
group join or a cold connection is not counted) and stops at the last acknowledgement.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quaymaster.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.test.utils import (  # noqa: E402
    setup_databases,
    setup_test_environment,
    teardown_databases,
)

from queues.backends import get_backend  # noqa: E402
from queues.backends.base import OutgoingMessage  # noqa: E402
from tests.queues.backends.engines import ENGINES  # noqa: E402
from tests.workers.conftest import _file_test_database_on_sqlite  # noqa: E402
from workers.context import Context  # noqa: E402
from workers.middleware import Metrics  # noqa: E402
from workers.registry import Registry  # noqa: E402
from workers.runtime import Worker, WorkerOptions  # noqa: E402

registry = Registry()


@registry.handler("noop")
def noop(message: dict[str, Any], ctx: Context) -> None:
    ctx.ack()


def measure(engine_name: str, concurrency: int, count: int) -> float:
    engine = ENGINES[engine_name]()
    queue = engine.make_queue(visibility_timeout=30, max_attempts=5)
    try:
        with get_backend(queue) as backend:
            backend.provision()
            for start in range(0, count, 500):
                backend.publish(
                    [
                        OutgoingMessage.new({"handler": "noop", "n": n}, ordering_key=str(n))
                        for n in range(start, min(count, start + 500))
                    ]
                )
        worker = Worker(queue, registry=registry, options=WorkerOptions(concurrency=concurrency))
        metrics = worker.find(Metrics)
        assert metrics is not None
        warm_up = max(1, count // 20)
        worker.start()
        try:
            deadline = time.monotonic() + 600
            while metrics.snapshot()["processed"] < warm_up:
                assert time.monotonic() < deadline, "the worker made no progress"
                time.sleep(0.001)
            started, done_at_start = time.monotonic(), metrics.snapshot()["processed"]
            while metrics.snapshot()["processed"] < count:
                assert time.monotonic() < deadline, "the worker made no progress"
                time.sleep(0.001)
            elapsed = time.monotonic() - started
        finally:
            worker.stop()
        return (count - done_at_start) / elapsed
    finally:
        engine.cleanup()
        queue.delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", nargs="+", default=["database"], choices=sorted(ENGINES))
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 10])
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()

    setup_test_environment()
    _file_test_database_on_sqlite()  # as in production: a file in WAL mode, not shared memory
    database = settings.DATABASES["default"]
    test = database.setdefault("TEST", {})
    test["NAME"] = f"{test.get('NAME') or 'test_' + database['NAME']}_bench{os.getpid()}"
    databases = setup_databases(verbosity=0, interactive=False)
    try:
        vendor = django.db.connection.vendor
        for engine_name in args.engines:
            for concurrency in args.concurrency:
                rate = measure(engine_name, concurrency, args.messages)
                print(
                    f"{engine_name:9} concurrency {concurrency:3}: {rate:8.0f} messages/s "
                    f"({args.messages} no-op messages, {vendor})",
                    flush=True,
                )
    finally:
        teardown_databases(databases, verbosity=0)


if __name__ == "__main__":
    main()
