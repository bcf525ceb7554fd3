"""The lifecycle log: batched writes, retention, the stream a live view polls; worker
processes' states and ``manage.py worker_health``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from queues.models import Queue, QueueType
from tests.workers.helpers import wait_for
from workers.events import Event, EventWriter, prune_events, stream_events
from workers.models import EventKind, Level, LifecycleEvent, WorkerProcess, WorkerState

pytestmark = pytest.mark.django_db


def event(queue: str = "orders", **fields: Any) -> Event:
    return Event(queue=queue, kind=fields.pop("kind", EventKind.STARTED), **fields)


def test_events_are_buffered_and_written_in_one_batch() -> None:
    writer = EventWriter(batch_size=100)
    for n in range(5):
        writer.emit(event(message_id=f"m{n}"))
    assert not LifecycleEvent.objects.exists(), "nothing is written per event"
    with CaptureQueriesContext(connection) as queries:
        assert writer.flush() == 5
    writes = [q["sql"] for q in queries.captured_queries if "INSERT" in q["sql"]]
    if connection.vendor == "postgresql":
        assert not writes, "written by COPY, which the query log does not see"
    else:
        assert len(writes) == 1, "one statement executed for the whole batch"
        assert writes[0].startswith("5 times: INSERT")
    assert [e.message_id for e in LifecycleEvent.objects.order_by("id")] == [
        f"m{n}" for n in range(5)
    ]


def test_a_full_buffer_keeps_the_newest_events() -> None:
    writer = EventWriter(max_buffer=3)
    for n in range(5):
        writer.emit(event(message_id=f"m{n}"))
    writer.flush()
    assert writer.dropped == 2
    assert list(LifecycleEvent.objects.values_list("message_id", flat=True)) == ["m2", "m3", "m4"]


@pytest.mark.django_db(transaction=True)
def test_the_writer_thread_flushes_on_its_own_and_on_stop() -> None:
    writer = EventWriter(flush_interval=0.05)
    writer.start()
    writer.emit(event(message_id="early"))
    wait_for(lambda: LifecycleEvent.objects.filter(message_id="early").exists(), 5, "a flush")
    writer.emit(event(message_id="last"))
    writer.stop()
    assert LifecycleEvent.objects.filter(message_id="last").exists()


def test_stream_events_filters_and_resumes_after_an_id() -> None:
    writer = EventWriter()
    writer.emit(event("orders", handler="a", level=Level.INFO))
    writer.emit(event("orders", handler="b", level=Level.WARNING, kind=EventKind.LOG))
    writer.emit(event("invoices", handler="a", level=Level.ERROR, kind=EventKind.FAILED))
    writer.emit(event("orders", handler="a", level=Level.DEBUG, kind=EventKind.LOG))
    writer.flush()
    everything = stream_events(0)
    assert len(everything) == 4
    first_id = everything[0].pk
    assert [e.pk for e in stream_events(first_id)] == [e.pk for e in everything[1:]]
    assert [e.handler for e in stream_events(0, queue="orders")] == ["a", "b", "a"]
    assert [e.queue for e in stream_events(0, handler="a")] == ["orders", "invoices", "orders"]
    assert [e.level for e in stream_events(0, level="warning")] == ["warning", "error"]
    assert stream_events(0, limit=2) == everything[:2]
    payload = everything[2].as_dict()
    assert payload["kind"] == "failed"
    assert payload["queue"] == "invoices"


def test_retention_drops_old_events_and_keeps_the_newest(settings: Any) -> None:
    settings.QUAYMASTER_LIFECYCLE_RETENTION_DAYS = 1
    settings.QUAYMASTER_LIFECYCLE_MAX_EVENTS = 3
    writer = EventWriter()
    now = timezone.now()
    writer.emit(event(message_id="ancient", at=now - timedelta(days=2)))
    for n in range(5):
        writer.emit(event(message_id=f"m{n}", at=now))
    writer.flush()
    assert prune_events() == 3
    assert list(LifecycleEvent.objects.values_list("message_id", flat=True)) == ["m2", "m3", "m4"]


def make_worker(queue: Queue, **fields: Any) -> WorkerProcess:
    return WorkerProcess.objects.create(queue=queue, host="h", pid=1, concurrency=10, **fields)


def test_a_worker_is_lost_after_three_silent_heartbeat_intervals(settings: Any) -> None:
    settings.QUAYMASTER_WORKER_HEARTBEAT_SECONDS = 5
    queue = Queue.objects.create(name="orders", type=QueueType.DATABASE)
    now = timezone.now()
    fresh = make_worker(queue, heartbeat_at=now - timedelta(seconds=14))
    lost = make_worker(queue, heartbeat_at=now - timedelta(seconds=16))
    draining = make_worker(queue, draining_at=now)
    stopped = make_worker(queue, stopped_at=now)
    assert fresh.state == WorkerState.RUNNING
    assert lost.state == WorkerState.LOST
    assert draining.state == WorkerState.DRAINING
    assert stopped.state == WorkerState.STOPPED
    assert set(WorkerProcess.objects.alive()) == {fresh, draining}


def test_worker_health_exits_0_only_with_a_recent_heartbeat(settings: Any) -> None:
    settings.QUAYMASTER_WORKER_HEARTBEAT_SECONDS = 5
    queue = Queue.objects.create(name="orders", type=QueueType.DATABASE)
    with pytest.raises(CommandError) as no_worker:
        call_command("worker_health", "orders")
    assert no_worker.value.returncode == 1

    make_worker(queue, heartbeat_at=timezone.now() - timedelta(minutes=1))
    with pytest.raises(CommandError):
        call_command("worker_health", "orders")

    make_worker(queue)
    call_command("worker_health", "orders")
    call_command("worker_health", str(queue.pk))

    with pytest.raises(CommandError, match="No queue"):
        call_command("worker_health", "nope")
