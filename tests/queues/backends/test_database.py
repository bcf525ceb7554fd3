"""The database queue's own guarantees, on SQLite and PostgreSQL alike (SKIP LOCKED on
PostgreSQL only)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import pytest
from django.db import connection, transaction

from queues.backends.database import DatabaseBackend
from queues.errors import BadMessage, LeaseLost
from queues.messages import Delivery, OutgoingMessage
from queues.models import DatabaseMessage, MessageState, Queue, QueueType
from tests.queues.helpers import fetch_n, fetch_nothing, wait_for


def make_queue(**options: object) -> Queue:
    queue = Queue(name=f"t-db-{uuid.uuid4().hex[:10]}", type=QueueType.DATABASE, **options)
    queue.full_clean()
    queue.save()
    return queue


def publish(queue: Queue, count: int) -> list[OutgoingMessage]:
    batch = [OutgoingMessage.new({"handler": "t", "n": n}) for n in range(count)]
    DatabaseBackend(queue).publish(batch)
    return batch


@pytest.mark.django_db
def test_a_stale_holder_cannot_settle_a_lease_someone_else_now_holds() -> None:
    queue = make_queue(visibility_timeout=1)
    publish(queue, 1)
    first, second = DatabaseBackend(queue, owner="a"), DatabaseBackend(queue, owner="b")
    (stale,) = fetch_n(first, 1)

    (fresh,) = wait_for(lambda: second.fetch(1, wait_seconds=0.2), 10, "the lease to expire")
    assert fresh.message_id == stale.message_id
    assert fresh.attempt == 2
    settlements: list[Callable[[], None]] = [
        lambda: first.ack(stale),
        lambda: first.extend(stale, 30),
        lambda: first.retry_later(stale, 5),
        lambda: first.dead_letter(stale, "too late"),
    ]
    for settle in settlements:
        with pytest.raises(LeaseLost) as raised:
            settle()
        assert raised.value.code == "lease_lost"
    second.ack(fresh)
    assert not DatabaseMessage.objects.filter(queue=queue).exists()


@pytest.mark.django_db
def test_ack_many_deletes_what_it_still_holds_and_reports_the_lost_lease() -> None:
    queue = make_queue(visibility_timeout=30)
    publish(queue, 3)
    backend = DatabaseBackend(queue, owner="a")
    deliveries = fetch_n(backend, 3)
    stolen = deliveries[1]
    DatabaseMessage.objects.filter(message_id=stolen.message_id).update(lease_token=uuid.uuid4())

    results = backend.ack_many(deliveries)

    assert results[0] is None
    assert results[2] is None
    assert isinstance(results[1], LeaseLost)
    assert [str(m) for m in DatabaseMessage.objects.values_list("message_id", flat=True)] == [
        stolen.message_id
    ], "only the two still leased were deleted"


@pytest.mark.django_db
def test_extend_keeps_the_lease() -> None:
    queue = make_queue(visibility_timeout=1)
    publish(queue, 1)
    backend = DatabaseBackend(queue)
    (delivery,) = fetch_n(backend, 1)
    backend.extend(delivery, 60)
    row = DatabaseMessage.objects.get(queue=queue)
    assert row.state == MessageState.IN_FLIGHT
    assert (row.available_at - row.created_at).total_seconds() > 30
    fetch_nothing(backend, wait_seconds=0)


@pytest.mark.django_db
def test_a_message_past_max_attempts_goes_dead_like_sqs_redrive() -> None:
    queue = make_queue(max_attempts=2)
    (message,) = publish(queue, 1)
    backend = DatabaseBackend(queue)
    for attempt in (1, 2):
        (delivery,) = fetch_n(backend, 1)
        assert delivery.attempt == attempt
        backend.retry_later(delivery, 0)

    fetch_nothing(backend, wait_seconds=0)
    row = DatabaseMessage.objects.get(queue=queue)
    assert row.state == MessageState.DEAD
    assert str(row.message_id) == message.message_id
    assert "2 attempt" in row.last_error
    assert backend.stats().dead_letters == 1


@pytest.mark.django_db
def test_publish_joins_the_callers_transaction() -> None:
    queue = make_queue()

    def publish_then_fail() -> None:
        with transaction.atomic():
            publish(queue, 2)
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        publish_then_fail()
    assert not DatabaseMessage.objects.filter(queue=queue).exists()


@pytest.mark.django_db
def test_the_same_message_id_is_stored_once() -> None:
    queue = make_queue()
    backend = DatabaseBackend(queue)
    message = OutgoingMessage.new({"handler": "t"})
    (first,) = backend.publish([message])
    second, third = backend.publish([message, message])
    assert first.as_response() == second.as_response() == third.as_response()
    assert DatabaseMessage.objects.filter(queue=queue).count() == 1


@pytest.mark.django_db
def test_bodies_must_be_json() -> None:
    queue = make_queue()
    with pytest.raises(BadMessage):
        DatabaseBackend(queue).publish([OutgoingMessage(str(uuid.uuid4()), b"\xff not json")])


def claim_in_thread(
    queue: Queue,
    count: int,
    out: list[Delivery],
    hold: threading.Event | None = None,
    claimed: threading.Event | None = None,
) -> threading.Thread:
    """A claimer on its own thread, hence its own database connection. With ``hold`` it claims
    inside a transaction that stays open (row locks held) until ``hold`` is set."""

    def run() -> None:
        try:
            backend = DatabaseBackend(queue, owner=threading.current_thread().name)
            if hold is None:
                out.extend(backend.fetch(count, wait_seconds=0))
                return
            with transaction.atomic():
                out.extend(backend.fetch(count, wait_seconds=0))
                assert claimed is not None
                claimed.set()
                hold.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_claimer_skips_rows_another_claimer_has_locked() -> None:
    """SKIP LOCKED: while one claimer's transaction holds 5 rows, another claims the next 5
    at once instead of waiting for (or sharing) the locked ones."""
    queue = make_queue()
    publish(queue, 10)
    hold, claimed = threading.Event(), threading.Event()
    first: list[Delivery] = []
    second: list[Delivery] = []
    holder = claim_in_thread(queue, 5, first, hold, claimed)
    try:
        assert claimed.wait(10)
        started = time.monotonic()
        claim_in_thread(queue, 5, second).join(10)
        assert time.monotonic() - started < 2, "the second claimer waited for the locks"
    finally:
        hold.set()
        holder.join(10)
    assert len(first) == len(second) == 5
    assert not {d.message_id for d in first} & {d.message_id for d in second}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_claimers_never_get_the_same_message() -> None:
    queue = make_queue()
    sent = {m.message_id for m in publish(queue, 60)}
    start = threading.Barrier(2)
    results: list[list[Delivery]] = [[], []]

    def drain(out: list[Delivery]) -> None:
        try:
            backend = DatabaseBackend(queue, owner=threading.current_thread().name)
            start.wait(10)
            while batch := backend.fetch(3, wait_seconds=0):
                out.extend(batch)
        finally:
            connection.close()

    threads = [threading.Thread(target=drain, args=(out,)) for out in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    first, second = ({d.message_id for d in out} for out in results)
    assert len(first) + len(second) == sum(len(out) for out in results)  # no repeats within
    assert not first & second
    assert first | second == sent
    assert first, "the first claimer got nothing: the race did not happen"
    assert second, "the second claimer got nothing: the race did not happen"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_waiting_fetch_wakes_on_the_publish_notify_not_its_poll() -> None:
    """PostgreSQL: publishing NOTIFYs the queue's channel at commit, and a fetch waiting on it
    claims at once. The poll is set to 30 s here, so only the NOTIFY can end the wait early."""
    queue = make_queue(visibility_timeout=30)
    consumer = DatabaseBackend(queue, owner="consumer")
    consumer.poll_interval = 30.0
    fetched: list[Delivery] = []
    returned = threading.Event()

    def wait() -> None:
        try:
            fetched.extend(consumer.fetch(1, wait_seconds=25))
        finally:
            connection.close()
            returned.set()

    thread = threading.Thread(target=wait)
    thread.start()
    try:
        wait_for(lambda: consumer.wakeup.listening, 10, "the consumer to LISTEN")
        (message,) = publish(queue, 1)
        assert returned.wait(10), "the fetch did not wake on the NOTIFY"
        assert [d.message_id for d in fetched] == [message.message_id]
    finally:
        thread.join(30)
        consumer.close()


@pytest.mark.django_db
def test_a_database_error_leaves_the_backend_as_broker_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every engine error leaves a backend as a QueueError, the database's included: the worker
    catches QueueError only. A failed ack_many is every delivery's error, nothing deleted."""
    from django.db import OperationalError

    from queues.backends.database import backend as database_backend
    from queues.errors import BrokerUnavailable

    queue = make_queue(visibility_timeout=30)
    publish(queue, 2)
    consumer = DatabaseBackend(queue, owner="a")
    deliveries = fetch_n(consumer, 2)

    def broken(*args: object, **kwargs: object) -> None:
        raise OperationalError("the database went away")

    monkeypatch.setattr(database_backend, "claim", broken)
    monkeypatch.setattr(database_backend, "delete_leased", broken)
    with pytest.raises(BrokerUnavailable) as raised:
        consumer.fetch(1, wait_seconds=0)
    assert isinstance(raised.value.__cause__, OperationalError)
    errors = consumer.ack_many(deliveries)
    assert [type(e) for e in errors] == [BrokerUnavailable, BrokerUnavailable]
    assert DatabaseMessage.objects.filter(queue=queue).count() == 2


@pytest.mark.django_db
def test_a_high_priority_message_published_after_low_ones_is_claimed_first() -> None:
    queue = make_queue(visibility_timeout=30)
    backend = DatabaseBackend(queue, owner="a")
    low = [OutgoingMessage.new({"handler": "t", "n": n}) for n in range(3)]
    unset = OutgoingMessage.new({"handler": "t", "n": 3})
    middle = OutgoingMessage.new({"handler": "t", "n": 4}, priority=4)
    high = OutgoingMessage.new({"handler": "t", "n": 5}, priority=9)
    backend.publish([*low, unset])
    backend.publish([middle])
    backend.publish([high])

    (first,) = backend.fetch(max_messages=1, wait_seconds=0)
    assert first.message_id == high.message_id
    rest = backend.fetch(max_messages=10, wait_seconds=0)
    assert [d.message_id for d in rest] == [m.message_id for m in (middle, *low, unset)]
    stored = dict(DatabaseMessage.objects.filter(queue=queue).values_list("message_id", "priority"))
    assert stored[uuid.UUID(unset.message_id)] == 0  # no priority given: the lowest


@pytest.mark.django_db
def test_a_delayed_retry_waits_its_time_whatever_its_priority() -> None:
    queue = make_queue(visibility_timeout=30)
    backend = DatabaseBackend(queue, owner="a")
    urgent = OutgoingMessage.new({"handler": "t"}, priority=9)
    backend.publish([urgent])
    (delivery,) = fetch_n(backend, 1)
    backend.retry_later(delivery, 30)
    plain = OutgoingMessage.new({"handler": "t"})
    backend.publish([plain])

    assert [d.message_id for d in backend.fetch(10, wait_seconds=0)] == [plain.message_id]


@pytest.mark.django_db
def test_the_claim_reads_the_priority_index_without_sorting() -> None:
    """Behind another queue's backlog, a claim walks ``(queue, -priority, id)`` from its start:
    an index scan, no sort (``EXPLAIN`` on PostgreSQL, ``EXPLAIN QUERY PLAN`` on SQLite)."""
    from django.utils import timezone

    from queues.backends.database.claim import claim_statement

    mine, other = make_queue(), make_queue()
    now = timezone.now()
    DatabaseMessage.objects.bulk_create(
        [
            DatabaseMessage(
                queue=queue, message_id=uuid.uuid4(), body={}, available_at=now, priority=n % 10
            )
            for queue, count in ((other, 20_000), (mine, 2_000))
            for n in range(count)
        ],
        batch_size=5_000,
    )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {DatabaseMessage._meta.db_table}")
    sql, params = claim_statement(mine.pk, "a", 10, 5, 30, now, uuid.uuid4())
    explain = "EXPLAIN" if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN"
    with connection.cursor() as cursor:
        cursor.execute(f"{explain} {sql}", params)
        plan = "\n".join(" ".join(str(v) for v in row) for row in cursor.fetchall())
    assert "queues_dbmessage_priority" in plan, plan
    if connection.vendor == "postgresql":
        assert "Index Scan" in plan, plan
        assert "Sort" not in plan, plan
    else:
        assert "TEMP B-TREE" not in plan, plan
