"""Replays: a link's selected records written to the outbox again, from their current
version, once each, in record order, at the rate, resumable and cancellable."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from queues.models import OutboxMessage, Queue, QueueLink
from queues.models.replay import Replay, ReplayState
from queues.replay import InvalidReplay, ReplayEnded, ReplayTooLarge, driver, service
from tests.queues.helpers import wait_for
from tests.queues.outbox_helpers import linked_table
from zstorage import records
from zstorage.models import Record, Table

pytestmark = pytest.mark.django_db


@pytest.fixture
def queue() -> Queue:
    return Queue.objects.create(name="order-events", type="database")


@pytest.fixture
def table(queue: Queue) -> Table:
    return linked_table(queue)


@pytest.fixture
def link(table: Table) -> QueueLink:
    return QueueLink.objects.get(table=table)


def _orders(table: Table, count: int) -> list[int]:
    made = records.bulk_create(
        table,
        [{"number": f"N-{n}", "status": "paid" if n % 3 else "new"} for n in range(count)],
    )
    return [r.pk for r in made]


def _replayed(replay: Replay) -> list[OutboxMessage]:
    return list(OutboxMessage.objects.filter(body__replay_id=str(replay.replay_id)).order_by("id"))


def test_a_filtered_replay_sends_those_records_current_versions_once_each_in_order_at_the_rate(
    table: Table, link: QueueLink
):
    ids = _orders(table, 60)
    records.update_record(table, ids[4], {"total": "12.50"})  # paid, now at version 2
    records.delete_record(table, ids[5])  # paid, gone
    records.update_record(table, ids[7], {"status": "new"})  # no longer paid
    ada = User.objects.create_user("ada", is_superuser=True)
    OutboxMessage.objects.all().delete()

    replay = service.start(link, {"filter": {"status": "paid"}}, 200, user=ada)
    expected = list(
        Record.objects.filter(table=table, data__status="paid")
        .order_by("id")
        .values_list("id", "version", "data")
    )
    assert replay.total == len(expected) == 38
    assert driver.run(replay.pk, driver.new_owner()) is driver.Outcome.COMPLETED

    rows = _replayed(replay)
    assert [(r.body["record_id"], r.body["version"], r.body["data"]) for r in rows] == expected
    first = rows[0].body
    assert first["event"] == "replay"
    assert first["handler"] == "on_order"
    assert first["table"] == "orders"
    assert first["actor"] == "ada"
    assert first["message_id"] == str(rows[0].message_id)
    assert rows[0].ordering_key == f"orders:{first['record_id']}"
    assert OutboxMessage.objects.count() == len(expected), "nothing but the replay's rows"
    # Never more than the rate: any j - i rows were written over at least (j - i - one chunk)
    # / rate seconds (replayed_at: when the chunk that wrote the message began).
    times = [dt.datetime.fromisoformat(r.body["replayed_at"]) for r in rows]
    assert (times[-1] - times[0]).total_seconds() >= (38 - driver.chunk_size(200)) / 200
    chunk = driver.chunk_size(200)
    for i in range(len(times)):
        for j in range(i + 1, len(times)):
            assert j - i <= 200 * (times[j] - times[i]).total_seconds() + chunk
    replay.refresh_from_db()
    assert (replay.state, replay.written, replay.percent) == (ReplayState.COMPLETED, 38, 100)
    started = AuditEvent.objects.get(action="replay.start")
    assert started.details["records"] == 38
    assert started.details["selection"] == {"filter": {"status": "paid"}}


def test_ids_and_a_changed_window_select_records(table: Table, link: QueueLink):
    ids = _orders(table, 10)
    Record.objects.filter(pk__in=ids[:4]).update(updated_at=timezone.now() - dt.timedelta(days=3))
    OutboxMessage.objects.all().delete()
    window = {
        "changed_from": (timezone.now() - dt.timedelta(days=4)).isoformat(),
        "changed_to": (timezone.now() - dt.timedelta(days=2)).isoformat(),
    }
    by_window = service.start(link, window, 1000)
    by_ids = service.start(link, {"ids": [ids[9], ids[1], 10**12]}, 1000)
    for replay in (by_window, by_ids):
        driver.run(replay.pk, driver.new_owner())
    assert [r.body["record_id"] for r in _replayed(by_window)] == ids[:4]
    assert [r.body["record_id"] for r in _replayed(by_ids)] == [ids[1], ids[9]]


def test_a_runner_that_dies_is_resumed_after_its_last_chunk_with_nothing_lost_or_doubled(
    table: Table, link: QueueLink
):
    ids = _orders(table, 100)
    OutboxMessage.objects.all().delete()
    replay = service.start(link, {}, 100)  # chunks of 10

    class Died(Exception):
        pass

    def die_after_three_chunks(now: Replay) -> None:
        if now.written >= 30:
            raise Died  # after the chunk committed, as a SIGKILL would leave it

    with pytest.raises(Died):
        driver.run(replay.pk, "first", progress=die_after_three_chunks)
    assert driver.run_due(5.0) == 0, "the dead runner's lease still holds"
    Replay.objects.filter(pk=replay.pk).update(lease_expires_at=timezone.now())  # it expires
    while Replay.objects.get(pk=replay.pk).state == ReplayState.RUNNING:
        assert driver.run_due(5.0) == 1
    assert [r.body["record_id"] for r in _replayed(replay)] == ids


def test_cancel_stops_a_running_replay(table: Table, link: QueueLink):
    _orders(table, 100)
    OutboxMessage.objects.all().delete()
    replay = service.start(link, {}, 100)

    def cancel_after_two_chunks(now: Replay) -> None:
        if now.written == 20 and not now.ended:
            service.cancel(now.pk)

    outcome = driver.run(replay.pk, driver.new_owner(), progress=cancel_after_two_chunks)
    assert outcome is driver.Outcome.STOPPED
    replay.refresh_from_db()
    assert (replay.state, replay.written) == (ReplayState.CANCELLED, 20)
    assert len(_replayed(replay)) == 20
    assert driver.run_due(1.0) == 0
    assert len(_replayed(replay)) == 20
    assert AuditEvent.objects.get(action="replay.cancel").details["written"] == 20
    with pytest.raises(ReplayEnded):
        service.cancel(replay.pk)


def test_pages_of_a_replay_cost_the_same_few_bounded_queries(table: Table, link: QueueLink):
    records.bulk_create(table, [{"number": f"N-{n}"} for n in range(2500)])
    OutboxMessage.objects.all().delete()
    replay = service.start(link, {"filter": {"number": {"$startswith": "N-"}}}, 10_000)
    with CaptureQueriesContext(connection) as queries:
        driver.run(replay.pk, driver.new_owner())
    assert len(_replayed(replay)) == 2500
    reads = [q["sql"] for q in queries.captured_queries if 'FROM "zstorage_record"' in q["sql"]]
    chunks = 2500 // driver.MAX_CHUNK
    assert len(reads) == chunks + 1, "one keyset page per chunk, and the empty one that ends it"
    assert all(f"LIMIT {driver.MAX_CHUNK}" in sql for sql in reads)
    assert len(queries) <= 10 * (chunks + 1) + 10, "a constant number of statements per chunk"


def test_what_a_replay_refuses(table: Table, link: QueueLink, settings):
    _orders(table, 5)
    with pytest.raises(InvalidReplay) as refused:
        service.start(link, {"filter": {"nope": 1}, "ids": "x", "color": 1}, 0)
    assert set(refused.value.errors) == {"ids", "color", "rate"}
    with pytest.raises(InvalidReplay) as refused:
        service.start(link, {"filter": {"nope": 1}}, 10)
    assert "filter" in refused.value.errors
    with pytest.raises(InvalidReplay):
        service.start(link, {"changed_from": "yesterday"}, 10)
    with pytest.raises(InvalidReplay):
        service.start(link, {"filter": {"status": "none-such"}}, 10)  # selects nothing
    settings.QUAYMASTER_REPLAY_MAX_RECORDS = 4
    with pytest.raises(ReplayTooLarge):
        service.start(link, {}, 10)
    link.enabled = False
    link.save()
    with pytest.raises(InvalidReplay):
        service.start(link, {}, 10)
    assert not Replay.objects.exists()


def test_the_scheduler_tick_runs_a_started_replay(table: Table, link: QueueLink, settings):
    from queues.tasks import replays as tick

    ids = _orders(table, 12)
    OutboxMessage.objects.all().delete()
    replay = service.start(link, {"ids": ids[3:6]}, 1000)
    settings.QUAYMASTER_REPLAY_SLICE_SECONDS = 5.0
    assert tick() == 1
    replay.refresh_from_db()
    assert (replay.state, replay.written, replay.owner) == (ReplayState.COMPLETED, 3, "")
    assert tick() == 0, "nothing left to run"


def test_the_command_previews_runs_and_cancels(
    table: Table, link: QueueLink, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr("sys.argv", ["manage.py", "replay"])
    _orders(table, 9)
    OutboxMessage.objects.all().delete()
    out = io.StringIO()
    call_command(
        "replay", "--link", str(link.pk), "--filter", '{"status": "paid"}', "--preview", stdout=out
    )
    assert "6 record(s) of orders would be replayed to order-events" in out.getvalue()
    assert not Replay.objects.exists()

    call_command("replay", "--link", str(link.pk), "--rate", "1000", stdout=out)
    replay = Replay.objects.get()
    assert "completed: 9 of 9 written (100%)" in out.getvalue()
    assert len(_replayed(replay)) == 9
    assert AuditEvent.objects.get(action="replay.start").actor_name == "command replay"

    call_command("replay", "--link", str(link.pk), "--background", stdout=out)
    waiting = Replay.objects.get(state=ReplayState.RUNNING)
    call_command("replay", "--cancel", str(waiting.pk), stdout=out)
    assert f"Cancelled replay {waiting.pk}: 0 of 9 written" in out.getvalue()
    with pytest.raises(CommandError, match="invalid_replay"):
        call_command("replay", "--link", str(link.pk), "--rate", "0")
    with pytest.raises(CommandError, match="--filter is not JSON"):
        call_command("replay", "--link", str(link.pk), "--filter", "{")
    with pytest.raises(CommandError, match="replay_ended"):
        call_command("replay", "--cancel", str(waiting.pk))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_cancel_from_another_connection_stops_the_runner_after_the_chunk_in_flight():
    import threading

    from django.db import connections

    queue = Queue.objects.create(name="order-events", type="database")
    table = linked_table(queue)
    _orders(table, 300)
    OutboxMessage.objects.all().delete()
    replay = service.start(QueueLink.objects.get(table=table), {}, 200)
    outcome: list[driver.Outcome] = []

    def runner() -> None:
        try:
            outcome.append(driver.run(replay.pk, driver.new_owner()))
        finally:
            connections.close_all()

    thread = threading.Thread(target=runner)
    thread.start()
    wait_for(lambda: Replay.objects.get(pk=replay.pk).written >= 40, 30, "some chunks")
    cancelled = service.cancel(replay.pk)
    thread.join(timeout=30)
    assert outcome == [driver.Outcome.STOPPED]
    assert 40 <= cancelled.written < 300
    assert len(_replayed(cancelled)) == cancelled.written, "nothing written after the cancel"
