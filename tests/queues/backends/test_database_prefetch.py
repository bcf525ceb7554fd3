"""The database queue's prefetch (``queues.backends.database.prefetch``): a worker's backend
claims a batch while its handlers are quick, hands it out in claim order, renews old leases
before a hand-out, gives the rest back on close, and a killed worker's batch comes back."""

from __future__ import annotations

import time
import uuid

import pytest

from queues.backends.database import DatabaseBackend
from queues.backends.database import prefetch as prefetch_module
from queues.messages import OutgoingMessage
from queues.models import DatabaseMessage, MessageState, Queue, QueueType
from tests.queues.helpers import fetch_n, wait_for

pytestmark = pytest.mark.django_db


def make_queue(visibility_timeout: int = 30) -> Queue:
    queue = Queue(
        name=f"t-db-{uuid.uuid4().hex[:10]}",
        type=QueueType.DATABASE,
        visibility_timeout=visibility_timeout,
    )
    queue.full_clean()
    queue.save()
    return queue


def publish(queue: Queue, count: int, priority: int = 0) -> list[OutgoingMessage]:
    batch = [OutgoingMessage.new({"handler": "t", "n": n}, priority=priority) for n in range(count)]
    DatabaseBackend(queue).publish(batch)
    return batch


def in_flight(queue: Queue) -> int:
    return DatabaseMessage.objects.filter(queue=queue, state=MessageState.IN_FLIGHT).count()


def prepared(queue: Queue, concurrency: int = 1) -> DatabaseBackend:
    backend = DatabaseBackend(queue, owner="worker")
    backend.prepare(concurrency)
    return backend


def test_a_quick_worker_claims_a_batch_and_hands_it_out_in_claim_order() -> None:
    queue = make_queue()
    low = publish(queue, 8)
    high = publish(queue, 4, priority=5)
    backend = prepared(queue)
    (first,) = backend.fetch(1, wait_seconds=0)  # no hand-out yet: exactly what was asked
    assert in_flight(queue) == 1
    got = [first] + [d for _ in range(11) for d in backend.fetch(1, wait_seconds=0)]
    assert in_flight(queue) == 12, "the quick worker's claims took batches"
    assert [d.message_id for d in got] == [m.message_id for m in high + low]
    assert len(backend.prefetch) < 12


def test_a_slow_worker_claims_only_what_it_asks_for(monkeypatch: pytest.MonkeyPatch) -> None:
    queue = make_queue()
    publish(queue, 20)
    backend = prepared(queue, concurrency=2)
    backend.fetch(2, wait_seconds=0)
    monkeypatch.setattr(prefetch_module, "QUICK_SECONDS", 0.0)  # every handler is "slow"
    backend.fetch(2, wait_seconds=0)
    assert in_flight(queue) == 4
    assert len(backend.prefetch) == 0


def test_closing_gives_the_batch_back_without_the_attempt() -> None:
    queue = make_queue()
    publish(queue, 12)
    backend = prepared(queue)
    handed = backend.fetch(1, wait_seconds=0) + backend.fetch(1, wait_seconds=0)
    kept = len(backend.prefetch)
    assert kept > 0
    backend.close()
    assert in_flight(queue) == len(handed)
    again = fetch_n(DatabaseBackend(queue, owner="other"), 12 - len(handed))
    assert {d.attempt for d in again} == {1}


def test_an_old_batch_is_renewed_before_a_hand_out_and_a_lost_row_is_dropped() -> None:
    queue = make_queue(visibility_timeout=30)
    publish(queue, 12)
    backend = prepared(queue)
    backend.fetch(1, wait_seconds=0)
    backend.fetch(1, wait_seconds=0)
    held = backend.prefetch._held
    assert len(held) >= 2
    # As if claimed long ago: its leases are renewed before the next hand-out.
    backend.prefetch._held = [(t - 60, d) for t, d in held]
    rows = DatabaseMessage.objects.filter(pk__in=[d.handle.row_id for _, d in held])
    rows.update(available_at=DatabaseMessage.objects.get(pk=held[0][1].handle.row_id).created_at)
    stolen = held[0][1]
    DatabaseMessage.objects.filter(pk=stolen.handle.row_id).update(lease_token=uuid.uuid4())
    began = time.time()
    (next_one,) = backend.fetch(1, wait_seconds=0)
    assert next_one.message_id != stolen.message_id, "a row leased to another was handed out"
    renewed = DatabaseMessage.objects.get(pk=next_one.handle.row_id).available_at
    assert renewed.timestamp() > began + 20


def test_a_killed_workers_batch_comes_back_when_its_leases_end() -> None:
    queue = make_queue(visibility_timeout=1)
    sent = publish(queue, 12)
    backend = prepared(queue)
    handed = backend.fetch(1, wait_seconds=0) + backend.fetch(1, wait_seconds=0)
    assert len(backend.prefetch) > 0
    # Never closed (SIGKILL): every row, handed out or kept, is delivered again.
    other = DatabaseBackend(queue, owner="other")
    again = wait_for(lambda: other.fetch(12, wait_seconds=0.2) or None, 15, "the leases to end")
    again += fetch_n(other, 12 - len(again)) if len(again) < 12 else []
    assert {d.message_id for d in again} == {m.message_id for m in sent}
    assert {d.message_id for d in handed} <= {d.message_id for d in again}
