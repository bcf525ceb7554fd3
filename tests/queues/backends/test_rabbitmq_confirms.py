"""RabbitMQ batches: sent whole, then confirmed together, and only what RabbitMQ confirmed
counts as published. A queue with ``x-max-length`` and ``x-overflow: reject-publish`` makes
RabbitMQ nack the messages beyond its length: a real nack in the middle of a batch."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from queues.backends import get_backend
from queues.backends.rabbitmq.confirms import CONNECTION_FAILED, Batch, ConfirmChannel, Outgoing
from queues.errors import BrokerUnavailable, PublishFailed
from queues.messages import OutgoingMessage
from queues.models import OutboxMessage, OutboxState, Queue
from queues.relay import Relay
from tests.queues.backends.engines import RabbitMqEngine

pytestmark = pytest.mark.django_db


@pytest.fixture
def rabbitmq() -> Iterator[RabbitMqEngine]:
    engine = RabbitMqEngine()
    try:
        yield engine
    finally:
        engine.cleanup()


def bounded_queue(rabbitmq: RabbitMqEngine, length: int) -> Queue:
    """A queue RabbitMQ holds at most ``length`` messages of, nacking the ones beyond."""
    queue = rabbitmq.make_queue()
    with rabbitmq._channel() as channel:
        channel.queue_declare(
            queue.name,
            durable=True,
            auto_delete=False,
            arguments={"x-max-length": length, "x-overflow": "reject-publish"},
        )
    return queue


@pytest.mark.e2e
def test_a_batch_publish_reports_the_nacked_messages_and_only_those(
    rabbitmq: RabbitMqEngine,
) -> None:
    queue = bounded_queue(rabbitmq, 2)
    messages = [OutgoingMessage.new({"handler": "t", "n": n}) for n in range(5)]
    with get_backend(queue) as backend:
        with pytest.raises(PublishFailed) as raised:
            backend.publish(messages)
        confirmed = [r.message_id for r in raised.value.published]
        assert confirmed == [m.message_id for m in messages[:2]]
        assert sorted(raised.value.failed) == sorted(m.message_id for m in messages[2:])
        assert all("nack" in why for why in raised.value.failed.values())

        held = rabbitmq.read_back(queue, 2)
        assert [r.message_id for r in held] == confirmed

        # The queue is full: a message alone is nacked, and says so.
        with pytest.raises(BrokerUnavailable, match="nack"):
            backend.publish([OutgoingMessage.new({"handler": "t"})])


@pytest.mark.e2e
def test_the_relay_marks_only_the_confirmed_rows_and_holds_back_a_refused_rows_key(
    rabbitmq: RabbitMqEngine,
) -> None:
    """Rows 0 and 1 fit, 2 to 4 are nacked: 0 and 1 are marked published, the rest stays
    pending for a later try — and so would a confirmed row behind a refused one of its key."""
    queue = bounded_queue(rabbitmq, 2)
    rows = []
    for n in range(5):
        message_id = uuid.uuid4()
        rows.append(
            OutboxMessage.objects.create(
                message_id=message_id,
                queue=queue,
                ordering_key=f"k{n}",
                body={"handler": "h", "message_id": str(message_id), "n": n},
            )
        )
    relay = Relay()
    try:
        assert relay.run_once() == 2
    finally:
        relay.close()
    states = {r.pk: (r.state, r.attempts) for r in OutboxMessage.objects.all()}
    assert [states[r.pk] for r in rows] == [
        (OutboxState.PUBLISHED, 0),
        (OutboxState.PUBLISHED, 0),
        (OutboxState.PENDING, 1),
        (OutboxState.PENDING, 1),
        (OutboxState.PENDING, 1),
    ]


def test_confirms_settle_singly_or_up_to_a_tag_and_ignore_other_batches() -> None:
    batch = Batch(first=11, size=4)  # tags 11 to 14
    batch.settle(12, multiple=False, reason="")
    assert batch.outcomes == [None, "", None, None]
    batch.settle(13, multiple=True, reason="nacked")  # 11 and 13; 12 stays confirmed
    assert batch.outcomes == ["nacked", "", "nacked", None]
    batch.settle(10, multiple=True, reason="")  # an earlier batch's
    batch.settle(15, multiple=False, reason="")  # a later one's
    assert batch.waiting == 1
    batch.fail_waiting("timed out")
    assert batch.outcomes == ["nacked", "", "nacked", "timed out"]
    assert (batch.waiting, batch.confirmed) == (0, 1)


class FakeChannel:
    """Stands in for py-amqp's channel: records publishes; the test's ``drain`` plays the
    broker's confirms through the registered ``events``."""

    def __init__(self) -> None:
        self.events: dict[str, set[Any]] = {"basic_ack": set(), "basic_nack": set()}
        self.events["basic_return"] = set()
        self.published: list[Any] = []

    def confirm_select(self) -> None:
        pass

    def basic_publish(self, message: Any, **_: Any) -> None:
        self.published.append(message)

    def ack(self, tag: int, multiple: bool = False) -> None:
        for callback in self.events["basic_ack"]:
            callback(tag, multiple)


def outgoing(n: int) -> list[Outgoing]:
    return [Outgoing(b"{}", str(uuid.uuid4()), {}, "application/json", "utf-8") for _ in range(n)]


def test_a_connection_lost_after_some_confirms_fails_only_the_unconfirmed() -> None:
    fake = FakeChannel()

    def drain(seconds: float) -> None:
        if fake.published and not getattr(fake, "acked", False):
            fake.acked = True  # type: ignore[attr-defined]
            fake.ack(2, multiple=True)
            return
        raise ConnectionResetError("gone")

    channel = ConfirmChannel(fake, drain)
    outcomes = channel.publish("q", outgoing(4), timeout=5)
    assert outcomes[:2] == ["", ""]
    assert all(reason.startswith(CONNECTION_FAILED) for reason in outcomes[2:])


def test_a_connection_lost_before_any_confirm_raises() -> None:
    def drain(seconds: float) -> None:
        raise ConnectionResetError("gone")

    with pytest.raises(ConnectionResetError):
        ConfirmChannel(FakeChannel(), drain).publish("q", outgoing(3), timeout=5)


def test_confirms_missing_at_the_deadline_fail_those_messages_and_the_next_batch_starts_clean() -> (
    None
):
    fake = FakeChannel()
    channel = ConfirmChannel(fake, lambda seconds: None)  # the broker never answers
    outcomes = channel.publish("q", outgoing(2), timeout=0.05)
    assert all("did not confirm" in reason for reason in outcomes)

    def drain(seconds: float) -> None:
        fake.ack(1, multiple=True)  # a late confirm of the first batch
        fake.ack(4, multiple=True)  # this batch's: tags 3 and 4

    channel.drain = drain
    assert channel.publish("q", outgoing(2), timeout=5) == ["", ""]
