"""A batch handler in real ``manage.py runworker`` processes against every real engine: a
process killed with SIGKILL in the middle of its batches loses none of their messages."""

from __future__ import annotations

import signal
from collections.abc import Callable

from queues.models import Queue, QueueType
from tests.queues.backends.engines import Engine
from tests.workers.helpers import publish, wait_for
from tests.workers.test_processes import Children, children

__all__ = ["children"]  # the fixture, used by name

MakeQueue = Callable[..., Queue]


def test_a_worker_killed_mid_batch_loses_nothing(
    engine: Engine, make_queue: MakeQueue, children: Children
) -> None:
    queue = make_queue(visibility_timeout=2)
    ids = publish(queue, *[{"handler": "record_batch", "n": n} for n in range(8)])
    doomed = children.runworker(queue, "--concurrency", "2", QM_TEST_HANG="1")
    wait_for(
        lambda: len([r for r in children.records() if r["pid"] == doomed.pid]) == 8,
        30,
        "both batches to start",
    )
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(10)
    assert "record_batch (batch 5, max_wait 0.3s)" in children.output(), "listed at start"

    survivor = children.runworker(queue, "--concurrency", "2")
    wait_for(lambda: {r["id"] for r in children.done()} == set(ids), 40, "the redeliveries")

    started = [r for r in children.records() if r["pid"] == doomed.pid]
    assert sorted(r["n"] for r in started) == list(range(8))
    done = children.done()
    assert {r["pid"] for r in done} == {survivor.pid}
    assert len(done) == 8
    if engine.type == QueueType.KAFKA:
        assert all(r["attempt"] == 1 for r in done), "Kafka does not count crash redeliveries"
    else:
        assert all(r["attempt"] == 2 for r in done)
