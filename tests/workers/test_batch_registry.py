"""Registering batch handlers (their settings, checked at import time) and the consumer
thread's batcher (how many in-flight messages take a thread, how much a fetch may bring)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from queues.messages import Delivery
from workers.batching import Batcher
from workers.errors import HandlerAlreadyRegistered
from workers.job import Job
from workers.registry import MAX_BATCH, MAX_WAIT, Registry


def bulk(messages: Any, ctx: Any) -> None: ...


def single(message: Any, ctx: Any) -> None: ...


@pytest.mark.parametrize("batch", [0, -1, MAX_BATCH + 1, True, 2.5, "10"])
def test_a_batch_size_outside_1_to_the_cap_is_refused(batch: Any) -> None:
    with pytest.raises(ValueError, match=f"batch must be a whole number from 1 to {MAX_BATCH}"):
        Registry().handler("bulk", batch=batch)


@pytest.mark.parametrize("max_wait", [0, -0.5, MAX_WAIT + 1, False, "1"])
def test_a_max_wait_not_above_zero_or_over_the_cap_is_refused(max_wait: Any) -> None:
    with pytest.raises(ValueError, match="max_wait must be a number of seconds above 0"):
        Registry().handler("bulk", batch=10, max_wait=max_wait)


def test_max_wait_without_batch_is_refused() -> None:
    with pytest.raises(ValueError, match="max_wait applies to batch handlers only"):
        Registry().handler("single", max_wait=1.0)


def test_batch_settings_are_kept_and_listed() -> None:
    handlers = Registry()
    handlers.handler("sync_orders", batch=100, max_wait=0.5)(bulk)
    handlers.handler("one_by_one")(single)
    handlers.handler("edge", batch=1)(bulk)

    assert handlers.get("sync_orders").batch == 100
    assert handlers.get("sync_orders").max_wait == 0.5
    assert handlers.get("one_by_one").batch is None
    assert handlers.batch_sizes == {"sync_orders": 100, "edge": 1}
    assert handlers.labels() == [
        "edge (batch 1, max_wait 1s)",
        "one_by_one",
        "sync_orders (batch 100, max_wait 0.5s)",
    ]


def test_the_same_function_may_not_register_again_with_other_batch_settings() -> None:
    handlers = Registry()
    handlers.handler("sync_orders", batch=100)(bulk)
    handlers.handler("sync_orders", batch=100)(bulk)  # a module imported twice
    with pytest.raises(HandlerAlreadyRegistered, match="batch 100"):
        handlers.handler("sync_orders", batch=50)(bulk)
    with pytest.raises(HandlerAlreadyRegistered):
        handlers.handler("sync_orders")(bulk)


def job(seq: int, handler: str) -> Job:
    body = json.dumps({"handler": handler}).encode()
    return Job(seq, Delivery(f"id-{seq}", body, 1, {}, None), 0.0)


def test_the_batcher_counts_what_takes_a_thread_and_closes_full_batches() -> None:
    handlers = Registry()
    handlers.handler("bulk", batch=3, max_wait=5)(bulk)
    handlers.handler("single")(single)
    batcher = Batcher(handlers)
    assert batcher.active
    assert batcher.room() == 0, "no batch open: fetch no more than the free threads"

    assert not batcher.add(job(1, "single")), "a single handler's message runs alone"
    assert not batcher.add(Job(2, Delivery("id-2", b"not json", 1, {}, None), 0.0))
    jobs = [job(seq, "bulk") for seq in range(3, 8)]
    assert all(batcher.add(j) for j in jobs)

    (full,) = batcher.take_ready(now=time.monotonic())
    assert batcher.room() == 1, "the open batch lacks one"
    assert [j.seq for j in full.jobs] == [3, 4, 5]
    # In flight: 5 gathered jobs; the closed batch takes one thread, the open one none.
    assert batcher.held == 4
    assert batcher.gathering
    due = batcher.next_due(now=time.monotonic())
    assert due is not None
    assert 0 < due <= 5

    for j in full.jobs:
        batcher.settled(j)
    assert batcher.held == 2, "the settled batch freed its thread"
    (late,) = batcher.take_ready(now=float("inf"))
    assert [j.seq for j in late.jobs] == [6, 7], "max_wait is over: runs with what it has"
    assert batcher.held == 1
    assert not batcher.gathering


def test_a_registry_without_batch_handlers_leaves_deliveries_undecoded() -> None:
    handlers = Registry()
    handlers.handler("single")(single)
    batcher = Batcher(handlers)
    assert not batcher.active
    assert batcher.largest == 0
    assert batcher.room() == 0
