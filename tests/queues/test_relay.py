"""The relay publishes committed outbox rows: at least once, in per-record order, surviving a
broker that is down and a relay that is killed."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest
from django.utils import timezone

from queues.backends import get_backend
from queues.messages import OutgoingMessage
from queues.models import OutboxMessage, OutboxState, Queue, RelayLease
from queues.relay import OutboxRows, Relay
from tests.queues.backends.engines import Engine, unique_name
from tests.queues.helpers import wait_for
from tests.queues.outbox_helpers import RelayProcess, linked_table, pending
from zstorage import records


def test_a_committed_write_is_published_once_with_its_message_id(engine: Engine, queue: Queue):
    table = linked_table(queue)
    record = records.create_record(table, {"number": "A-1"})
    row = OutboxMessage.objects.get()

    relay = Relay()
    try:
        assert relay.run_once() == 1
        assert relay.run_once() == 0, "published rows are not sent again"
    finally:
        relay.close()

    [held] = engine.read_back(queue, 1)
    assert held.message_id == str(row.message_id)
    assert json.loads(held.body)["record_id"] == record.pk
    row.refresh_from_db()
    assert row.state == OutboxState.PUBLISHED
    assert row.broker_ref


@pytest.mark.e2e
@pytest.mark.django_db
def test_a_broker_down_at_commit_time_gets_the_message_once_it_is_back(broker: Engine):
    queue = Queue.objects.create(
        name=unique_name(broker.type), type=broker.type, url=broker.unreachable_url or ""
    )
    broker.created.append(queue)
    table = linked_table(queue)
    records.create_record(table, {"number": "A-1"})
    row = OutboxMessage.objects.get()
    relay = Relay()
    try:
        assert relay.run_once() == 0
        row.refresh_from_db()
        assert row.state == OutboxState.PENDING
        assert row.attempts == 1
        assert row.last_error.startswith("broker_unavailable")
        assert row.available_at > timezone.now() - dt.timedelta(seconds=1)

        queue.url = broker.url()  # the broker is back
        queue.save()
        with get_backend(queue) as backend:
            backend.provision()
        wait_for(relay.run_once, 10, "the relay to publish after its back-off")
    finally:
        relay.close()
    [held] = broker.read_back(queue, 1)
    assert held.message_id == str(row.message_id)
    broker.cleanup()


@pytest.mark.django_db
def test_a_message_too_large_is_parked_and_the_queue_moves_on():
    queue = Queue.objects.create(name="q", type="database")
    table = linked_table(queue)
    records.create_record(table, {"number": "x" * 900})
    OutboxMessage.objects.update(body={"handler": "h", "blob": "x" * (1024 * 1024 + 1)})
    records.create_record(table, {"number": "A-2"})
    relay = Relay()
    assert relay.run_once() == 0
    assert relay.run_once() == 1
    big, small = OutboxMessage.objects.order_by("id")
    assert big.state == OutboxState.FAILED
    assert "1048576" in big.last_error
    assert small.state == OutboxState.PUBLISHED


@pytest.mark.django_db
def test_one_relay_at_a_time_per_queue_and_a_dead_relays_lease_expires():
    queue = Queue.objects.create(name="q", type="database")
    first, second = Relay(owner="first", lease_seconds=60), Relay(owner="second")
    assert first.leases.acquire(queue.pk)
    assert not second.leases.acquire(queue.pk)
    _dies(first)
    assert second.leases.acquire(queue.pk)
    assert not first.leases.acquire(queue.pk)


def _dies(relay: Relay) -> None:
    """What a SIGKILL leaves: the relay's database session ends (on PostgreSQL, with its
    advisory locks) and its lease row is left to expire (here: already expired)."""
    RelayLease.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    locks = relay.leases.locks
    if locks is not None:
        pid = locks.session_id
        locks.close()
        # The server frees the locks when the session's backend exits, a moment after the
        # client hung up (as after a SIGKILL): wait for that, as the next relay's poll would.
        if pid is not None:
            wait_for(lambda: not _session_alive(pid), 10, "the relay's session to end")


def _session_alive(pid: int) -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        # Inside the test's transaction the activity view is a snapshot kept until its end:
        # clear it so each look sees the server as it is now.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone() is not None


def _kafka_queue(broker: Engine) -> Queue:
    queue = broker.make_queue(partitions=3)
    with get_backend(queue) as backend:
        backend.provision()
    return queue


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("broker", ["kafka"], indirect=True)
def test_a_relay_killed_mid_batch_loses_nothing(broker: Engine):
    queue = _kafka_queue(broker)
    table = linked_table(queue)
    total = 2000
    records.bulk_create(table, [{"number": f"N-{i}"} for i in range(total)])
    expected = {str(m) for m in OutboxMessage.objects.values_list("message_id", flat=True)}

    first = RelayProcess("--batch-size", "50", "--lease-seconds", "1")
    wait_for(lambda: pending(queue) < total, 60, "the first relay to publish something")
    first.kill()
    left = pending(queue)
    assert left > 0, "killed before the end of the outbox: the test needs a bigger outbox"

    second = RelayProcess("--batch-size", "500", "--lease-seconds", "1")
    try:
        wait_for(lambda: pending(queue) == 0, 60, "the second relay to publish the rest")
    finally:
        assert second.stop() == 0
    held = broker.read_back(queue, broker.messages_in_topic(queue))
    assert {r.message_id for r in held} == expected, "every message arrived, duplicates included"
    broker.cleanup()


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("broker", ["kafka"], indirect=True)
def test_a_thousand_updates_of_one_record_arrive_in_version_order_with_two_relays(broker: Engine):
    queue = _kafka_queue(broker)
    table = linked_table(queue)
    relays = [RelayProcess("--batch-size", "20"), RelayProcess("--batch-size", "20")]
    try:
        record = records.create_record(table, {"number": "A-1", "total": "0"})
        for n in range(1, 1001):
            records.update_record(table, record.pk, {"total": str(n)})
        wait_for(lambda: pending(queue) == 0, 120, "the relays to publish every update")
    finally:
        assert [r.stop() for r in relays] == [0, 0]
    held = broker.read_back(queue, 1001)
    versions = [json.loads(r.body)["version"] for r in held]
    assert versions == list(range(1, 1002))
    assert len({r.partition for r in held}) == 1, "one record, one partition"
    broker.cleanup()


@pytest.mark.django_db
def test_the_relay_reports_its_rate_failures_and_backlog(caplog: pytest.LogCaptureFixture):
    queue = Queue.objects.create(name="q", type="database")
    table = linked_table(queue)
    for n in range(3):
        records.create_record(table, {"number": f"A-{n}"})
    relay = Relay()
    relay.run_once()
    records.create_record(table, {"number": "B-1"})
    with caplog.at_level("INFO", logger="queues.relay"):
        relay.report()
    assert "published 3 (" in caplog.text
    assert "0 failed batches; backlog 1" in caplog.text
    assert relay.counters.published == 0, "each report covers the time since the last one"


def _outbox_row(queue: Queue, key: str, name: str) -> OutboxMessage:
    message_id = uuid.uuid4()
    return OutboxMessage.objects.create(
        message_id=message_id,
        queue=queue,
        ordering_key=key,
        body={"handler": "h", "message_id": str(message_id), "name": name},
    )


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("broker", ["kafka"], indirect=True)
def test_the_read_ahead_never_lets_a_later_row_of_a_key_overtake_one_committed_late(
    broker: Engine,
):
    """X (key k) takes its id first but commits while the relay publishes the batch after
    it; Y (key k) is written after X committed, so it has a higher id. A read of "the rows
    after the batch in flight" would send Y and leave X behind; reading from the head (the
    relay's read-ahead skips only the rows in flight) sends X first."""
    import psycopg
    from django.db import connection

    queue = _kafka_queue(broker)
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    late = psycopg.connect(**params)  # autocommit off: X stays uncommitted
    x_id = uuid.uuid4()
    late.execute(
        "INSERT INTO queues_outboxmessage (message_id, queue_id, ordering_key, body, state, "
        "attempts, last_error, available_at, created_at) "
        "VALUES (%s, %s, 'k', %s::jsonb, 'pending', 0, '', now(), now())",
        [x_id, queue.pk, json.dumps({"handler": "h", "message_id": str(x_id), "name": "X"})],
    )
    _outbox_row(queue, "a", "A1")
    _outbox_row(queue, "b", "A2")

    class Racing(OutboxRows):
        reads = 0

        def pending(self, queue_id: int, skip: set[int] | None = None) -> list[Any]:
            self.reads += 1
            if self.reads == 2:  # the read-ahead, while A1 and A2 are with the broker
                late.commit()
                _outbox_row(queue, "k", "Y")
            return super().pending(queue_id, skip)

    relay = Relay(rows=Racing(batch_size=2))
    try:
        assert relay.run_once() == 4
    finally:
        relay.close()
        late.close()
    held = broker.read_back(queue, 4)
    names = [
        json.loads(r.body)["name"] for r in sorted(held, key=lambda r: (r.partition, r.offset))
    ]
    assert sorted(names) == ["A1", "A2", "X", "Y"]
    k_order = [n for n in names if n in ("X", "Y")]
    assert k_order == ["X", "Y"]
    assert pending(queue) == 0
    broker.cleanup()


@pytest.mark.e2e
@pytest.mark.django_db
@pytest.mark.parametrize("broker", ["kafka"], indirect=True)
def test_a_failed_batch_holds_back_the_rows_read_ahead(broker: Engine):
    """Batch 1 fails at the broker: the rows read while it was in flight are not published
    (they would overtake it); the queue waits, then sends everything in id order."""
    queue = Queue.objects.create(
        name=unique_name("kafka"), type="kafka", url=broker.unreachable_url or ""
    )
    broker.created.append(queue)
    rows = [_outbox_row(queue, "k", f"N{n}") for n in range(4)]
    relay = Relay(batch_size=2)
    try:
        assert relay.run_once() == 0
        assert pending(queue) == 4
        postponed = OutboxMessage.objects.filter(attempts=1).order_by("id")
        assert [r.pk for r in postponed] == [r.pk for r in rows[:2]]

        queue.url = broker.url()
        queue.save()
        with get_backend(queue) as backend:
            backend.provision()
        OutboxMessage.objects.update(available_at=timezone.now())
        assert relay.run_once() == 4
    finally:
        relay.close()
    held = broker.read_back(queue, 4)
    assert [json.loads(r.body)["name"] for r in sorted(held, key=lambda r: r.offset)] == [
        "N0",
        "N1",
        "N2",
        "N3",
    ]
    broker.cleanup()


def _listening_sessions() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query ILIKE 'LISTEN %%'"
        )
        (count,) = cursor.fetchone()
    return int(count)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("listen", [True, False], ids=["listen", "no-listen"])
def test_relay_no_listen_polls_without_a_listen_session(listen: bool):
    """``manage.py relay --no-listen`` holds no LISTEN session on PostgreSQL and still
    publishes a row committed without any NOTIFY, by polling; the default listens."""
    queue = Queue.objects.create(name="q", type="database")
    relay = RelayProcess("--poll-seconds", "0.2", *([] if listen else ["--no-listen"]))
    try:
        _outbox_row(queue, "k", "A")  # no NOTIFY: only polling finds it
        wait_for(lambda: pending(queue) == 0, 30, "the relay to publish the row by polling")
        assert queue.database_messages.count() == 1
        # Started (it published), so a listening relay has its session by now.
        assert _listening_sessions() == (1 if listen else 0)
    finally:
        assert relay.stop() == 0


# -- the parts: an injected backend factory, the lease store and the row store ------------------


class Built:
    """A backend factory that remembers what it built and what was closed."""

    def __init__(self) -> None:
        self.built: list[Any] = []
        self.closed: list[Any] = []

    def __call__(self, queue: Queue) -> Any:
        backend = get_backend(queue)
        original = backend.close

        def close() -> None:
            self.closed.append(backend)
            original()

        backend.close = close  # type: ignore[method-assign]
        self.built.append(backend)
        return backend


@pytest.mark.django_db
def test_the_relay_publishes_with_the_backend_factory_it_was_given():
    queue = Queue.objects.create(name="q", type="database")
    table = linked_table(queue)
    factory = Built()
    relay = Relay(backend_factory=factory)
    records.create_record(table, {"number": "A-1"})
    assert relay.run_once() == 1
    records.create_record(table, {"number": "A-2"})
    assert relay.run_once() == 1
    assert len(factory.built) == 1, "one backend per queue, kept between batches"
    queue.max_attempts = 9
    queue.save()  # an edited queue gets a new backend; the old one is closed
    records.create_record(table, {"number": "A-3"})
    assert relay.run_once() == 1
    assert factory.closed == factory.built[:1]
    relay.close()
    assert factory.closed == factory.built
    assert queue.database_messages.count() == 3


@pytest.mark.django_db
def test_marking_a_batch_renews_the_lease_and_tells_when_another_relay_took_it():
    queue = Queue.objects.create(name="q", type="database")
    rows = [_outbox_row(queue, "k", f"N{n}") for n in range(3)]
    first, second = Relay(owner="first"), Relay(owner="second")
    assert first.leases.acquire(queue.pk)
    pending_rows = first.rows.pending(queue.pk)
    assert [r.pk for r in pending_rows] == [r.pk for r in rows]
    assert [r.pk for r in first.rows.pending(queue.pk, skip={rows[0].pk})] == [
        r.pk for r in rows[1:]
    ]
    with get_backend(queue) as backend:
        results = backend.publish(
            [OutgoingMessage(r.message_id, r.body, r.ordering_key) for r in pending_rows]
        )
    before = RelayLease.objects.get(queue=queue).expires_at
    published = list(zip(pending_rows, results, strict=True))
    assert first.rows.mark_published(published[:1], first.leases.renewal(queue.pk))
    assert RelayLease.objects.get(queue=queue).expires_at >= before

    _dies(first)  # its session, not the process: it goes on marking
    assert second.leases.acquire(queue.pk)
    assert not first.rows.mark_published(published[1:], first.leases.renewal(queue.pk))
    assert pending(queue) == 0, "the rows are marked all the same"
    assert RelayLease.objects.get(queue=queue).owner == "second"


@pytest.mark.django_db
def test_an_outbox_rows_priority_reaches_the_engine():
    """The relay reads each row's priority into ``OutgoingMessage.priority``: on the database
    queue the urgent row, written last, is claimed first."""
    queue = Queue.objects.create(name="q", type="database")
    plain, urgent = (
        OutboxMessage.objects.create(queue=queue, body={"handler": "t"}, priority=priority)
        for priority in (None, 7)
    )
    relay = Relay()
    try:
        assert relay.run_once() == 2
    finally:
        relay.close()
    stored = dict(queue.database_messages.values_list("message_id", "priority"))
    assert stored == {plain.message_id: 0, urgent.message_id: 7}
    with get_backend(queue) as backend:
        first, second = backend.fetch(2, wait_seconds=0)
    assert (first.message_id, second.message_id) == (str(urgent.message_id), str(plain.message_id))


@pytest.mark.django_db
def test_a_partly_refused_batch_marks_the_accepted_rows_but_not_those_behind_a_refused_key():
    """The broker refuses the first row of key "a": the other "a" row, accepted, stays pending
    (sent again after it); "b"'s rows are marked."""
    from queues.errors import PublishFailed

    queue = Queue.objects.create(name="q", type="database")
    rows = [_outbox_row(queue, key, f"N{n}") for n, key in enumerate("abab")]
    refused = str(rows[0].message_id)

    def refusing(queue: Queue) -> Any:
        backend = get_backend(queue)
        publish = backend.publish

        def partly(messages: Any) -> Any:
            results = publish([m for m in messages if m.message_id != refused])
            raise PublishFailed(results, {refused: "nacked"})

        backend.publish = partly  # type: ignore[method-assign]
        return backend

    relay = Relay(backend_factory=refusing)
    try:
        assert relay.run_once() == 2
    finally:
        relay.close()
    states = {r.pk: r.state for r in OutboxMessage.objects.all()}
    assert [states[r.pk] for r in rows] == [
        OutboxState.PENDING,
        OutboxState.PUBLISHED,
        OutboxState.PENDING,
        OutboxState.PUBLISHED,
    ]


@pytest.mark.django_db
def test_the_relay_sends_each_stored_body_as_it_is_a_json_body_with_its_priority():
    """On PostgreSQL the body goes out as the stored jsonb text (no decode and encode again);
    either way it is a JSON body, equal to the row's, and a priority travels with it."""
    from django.db import connection

    from queues.messages import JsonText

    queue = Queue.objects.create(name="q", type="database")
    plain = _outbox_row(queue, "k", "plain")
    urgent = _outbox_row(queue, "k", "urgent")
    OutboxMessage.objects.filter(pk=urgent.pk).update(priority=7)
    sent: list[OutgoingMessage] = []

    def recording(queue: Queue) -> Any:
        backend = get_backend(queue)
        publish = backend.publish

        def record(messages: Any) -> Any:
            sent.extend(messages)
            return publish(messages)

        backend.publish = record  # type: ignore[method-assign]
        return backend

    relay = Relay(backend_factory=recording)
    try:
        assert relay.run_once() == 2
    finally:
        relay.close()
    assert [m.message_id for m in sent] == [str(plain.message_id), str(urgent.message_id)]
    assert all(m.is_json for m in sent)
    assert [json.loads(m.body_bytes()) for m in sent] == [plain.body, urgent.body]
    assert [m.priority for m in sent] == [None, 7]
    if connection.vendor == "postgresql":
        assert all(isinstance(m.body, JsonText) for m in sent)
    assert [m.body for m in queue.database_messages.order_by("id")] == [plain.body, urgent.body]
