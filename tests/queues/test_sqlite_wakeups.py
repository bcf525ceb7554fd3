"""SQLite's wake-ups (``queues.dialects.sqlite``): a commit that notified a channel wakes its
listeners through their Unix sockets, once, and a rollback wakes nobody; a database-queue
fetch and the relay wait on them instead of their poll."""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
import uuid

import pytest
from django.db import connection, transaction

from queues.backends.database import DatabaseBackend
from queues.dialects import Listener, dialect
from queues.dialects.sqlite import SocketListener, channel_directory
from queues.messages import Delivery, OutgoingMessage
from queues.models import Queue, QueueType
from tests.queues.helpers import wait_for


@pytest.fixture(autouse=True)
def _sqlite_only() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's own wake-ups (PostgreSQL has NOTIFY)")


def channel() -> str:
    return f"t-wake-{uuid.uuid4().hex[:8]}"


def listen(name: str) -> Listener:
    listener = dialect().listen(name)
    assert listener is not None, "no socket could be made"
    return listener


def woke(listener: Listener, within: float) -> bool:
    """Whether ``listener`` wakes before ``within`` seconds run out."""
    began = time.monotonic()
    listener.wait(within)
    return time.monotonic() - began < within * 0.9


@pytest.mark.django_db(transaction=True)
def test_a_commit_wakes_the_listeners_of_its_channel_and_no_other() -> None:
    name, other = channel(), channel()
    with (
        listen(name) as first,
        listen(name) as second,
        listen(other) as elsewhere,
    ):
        assert isinstance(first, SocketListener)
        with transaction.atomic():
            dialect().notify_at_commit(name)
            assert not woke(first, 0.2), "woken before the commit"
        assert woke(first, 10)
        assert woke(second, 10)
        assert not woke(elsewhere, 0.2)


@pytest.mark.django_db(transaction=True)
def test_a_rollback_wakes_nobody_and_a_transaction_wakes_once() -> None:
    name = channel()
    with listen(name) as listener:
        with transaction.atomic():
            dialect().notify(name)
            transaction.set_rollback(True)
        assert not woke(listener, 0.3)
        with transaction.atomic():
            for _ in range(3):
                dialect().notify_at_commit(name)
            assert len(connection.run_on_commit) == 1
        assert woke(listener, 10)
        assert not woke(listener, 0.3), "one transaction woke it twice"


@pytest.mark.django_db(transaction=True)
def test_a_socket_left_by_a_killed_process_is_removed_by_the_next_sender() -> None:
    name = channel()
    directory = channel_directory(str(connection.settings_dict["NAME"]), name)
    with listen(name) as listener:
        stale = directory / f"{os.getpid()}-stale"
        orphan = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        orphan.bind(str(stale))
        orphan.close()  # as SIGKILL leaves it: the file stays, nobody holds the socket
        dialect().notify(name)  # outside a transaction: sent at once
        assert woke(listener, 10)
        assert not stale.exists()


@pytest.mark.django_db(transaction=True)
def test_listen_returns_none_where_no_socket_can_be_made(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError("read-only temporary directory")

    monkeypatch.setattr(SocketListener, "__init__", refuse)
    assert dialect().listen(channel()) is None


@pytest.mark.django_db(transaction=True)
def test_a_waiting_fetch_wakes_on_the_publish_not_its_poll() -> None:
    """The poll is 30 s here, so only the wake-up can end the wait early."""
    queue = Queue(name=f"t-db-{uuid.uuid4().hex[:10]}", type=QueueType.DATABASE)
    queue.full_clean()
    queue.save()
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
        wait_for(lambda: consumer.wakeup.listening, 10, "the consumer to listen")
        message = OutgoingMessage.new({"handler": "t"})
        with transaction.atomic():
            DatabaseBackend(queue).publish([message])
        assert returned.wait(10), "the fetch did not wake on the publish"
        assert [d.message_id for d in fetched] == [message.message_id]
    finally:
        thread.join(30)
        consumer.close()


@pytest.mark.django_db(transaction=True)
def test_an_empty_claim_does_not_wait_for_the_write_lock() -> None:
    """A worker looks for messages several times per message; on an empty queue that look is
    a read, which never waits behind another process's write (WAL)."""
    queue = Queue(name=f"t-db-{uuid.uuid4().hex[:10]}", type=QueueType.DATABASE)
    queue.full_clean()
    queue.save()
    writer = sqlite3.connect(str(connection.settings_dict["NAME"]), isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        began = time.monotonic()
        assert DatabaseBackend(queue, owner="a").fetch(1, wait_seconds=0) == []
        assert time.monotonic() - began < 5, "the empty claim waited for the write lock"
    finally:
        writer.execute("ROLLBACK")
        writer.close()
