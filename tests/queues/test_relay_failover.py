"""Relay failover on PostgreSQL: a queue's lease is an advisory lock that ends with the
holder's database session, so a dead relay's queues go to another relay at its next try,
without waiting for the lease row to expire; a relay that lost its session stops publishing
the queue at its next mark. (Takeover times are measured by ``make bench``, scenario
``failover``, not here.)"""

from __future__ import annotations

import json

import pytest
from django.db import connection

from queues.backends import get_backend
from queues.messages import OutgoingMessage
from queues.models import OutboxMessage, Queue, RelayLease
from queues.relay import Relay
from tests.queues.helpers import wait_for
from tests.queues.outbox_helpers import RelayProcess, pending

pytestmark = pytest.mark.postgres


def _end_session(pid: int) -> None:
    """What the server does when the process on the other end dies: the session ends."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])


def _rows(queue: Queue, count: int) -> None:
    OutboxMessage.objects.bulk_create(
        [
            OutboxMessage(queue=queue, ordering_key=f"k{n % 7}", body={"handler": "h", "n": n})
            for n in range(count)
        ]
    )


@pytest.mark.django_db(transaction=True)
def test_a_relay_whose_session_ended_loses_its_queue_at_once_and_stops_at_its_next_mark():
    queue = Queue.objects.create(name="q", type="database")
    _rows(queue, 2)
    first, second = Relay(owner="first", lease_seconds=600), Relay(owner="second")
    try:
        assert first.leases.acquire(queue.pk)
        assert not second.leases.acquire(queue.pk), "one relay at a time per queue"
        assert first.leases.locks is not None
        session = first.leases.locks.session_id
        assert session is not None
        _end_session(session)

        # The row still says "first" for ten minutes; the lock is free now.
        assert RelayLease.objects.get(queue=queue).owner == "first"
        wait_for(lambda: second.leases.acquire(queue.pk), 10, "the lock to be free")
        assert RelayLease.objects.get(queue=queue).owner == "second"

        rows = first.rows.pending(queue.pk)
        with get_backend(queue) as backend:
            results = backend.publish(
                [
                    OutgoingMessage(r.message_id, json.loads(r.body), r.ordering_key)
                    if isinstance(r.body, str)
                    else OutgoingMessage(r.message_id, r.body, r.ordering_key)
                    for r in rows
                ]
            )
        kept = first.rows.mark_published(
            list(zip(rows, results, strict=True)), first.leases.renewal(queue.pk)
        )
        assert not kept, "the first relay learns at its mark that the queue is not its own"
        first.leases.release(queue.pk)
        assert RelayLease.objects.get(queue=queue).owner == "second"
        assert not first.leases.acquire(queue.pk), "its new session does not get the lock back"
    finally:
        first.close()
        second.close()


@pytest.mark.django_db(transaction=True)
def test_a_sigkilled_relay_s_queue_is_published_by_the_other_relay_before_its_lease_expires():
    """Both relays hold leases of ten minutes: the takeover comes from the ended session."""
    queue = Queue.objects.create(name="q", type="database")
    total = 3000
    _rows(queue, total)
    first = RelayProcess("--batch-size", "20", "--lease-seconds", "600")
    try:
        wait_for(lambda: pending(queue) < total, 60, "the first relay to publish something")
        second = RelayProcess("--batch-size", "500", "--lease-seconds", "600", "--no-listen")
        first.kill()
        assert pending(queue) > 0, "killed before the end of the outbox: make it bigger"
        try:
            wait_for(lambda: pending(queue) == 0, 60, "the second relay to publish the rest")
        finally:
            assert second.stop() == 0
    finally:
        if first.process.poll() is None:
            first.kill()
    published = set(queue.database_messages.values_list("message_id", flat=True))
    assert published == set(OutboxMessage.objects.values_list("message_id", flat=True))
