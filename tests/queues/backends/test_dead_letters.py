"""Dead letters on every engine, against the real service: read without losing them, send
back one or all (attempts start again), delete one, purge the queue.

Where a test needs to know what the broker holds, it asks the engine's own client
(``engines.py``) as well as the backend under test.
"""

from __future__ import annotations

import json

import pytest

from queues import dead_letters, services
from queues.backends import get_backend
from queues.backends.base import Backend
from queues.backends.kafka.settled import Settled, _parse, _ranges
from queues.errors import BadMessage, HandlerNotAllowed
from queues.messages import DeadLetter, Delivery, OutgoingMessage
from queues.models import MessageState, Queue, QueueType
from tests.queues.backends.engines import Engine
from tests.queues.helpers import fetch_n, fetch_nothing, wait_for


def publish(backend: Backend, count: int, tag: str = "") -> list[OutgoingMessage]:
    batch = [
        OutgoingMessage.new(
            {"handler": "send_email", "n": n, "tag": tag},
            ordering_key=f"orders:{n}",
            headers={"source": "tests"},
        )
        for n in range(count)
    ]
    backend.publish(batch)
    return batch


def dead_letter_all(backend: Backend, count: int) -> list[Delivery]:
    """Fetch ``count`` messages and dead-letter each with a reason naming it."""
    deliveries = fetch_n(backend, count)
    for delivery in deliveries:
        backend.dead_letter(delivery, f"handler send_email failed for {delivery.message_id}")
    return deliveries


def waiting_dead_letters(backend: Backend, count: int) -> list[DeadLetter]:
    """The DLQ, once the engine shows ``count`` (SQS and Kafka take a moment to show sends)."""

    def probe() -> list[DeadLetter] | None:
        letters = backend.dead_letters()
        return letters if len(letters) == count else None

    if count == 0:
        letters = backend.dead_letters()
        assert letters == []
        return letters
    return wait_for(probe, 15, f"{count} dead letter(s)")


def unsettled(backend: Backend) -> int | None:
    dead = backend.stats().dead_letters
    return None if dead is None else dead - backend.settled_dead_letters()


def test_a_dead_letter_shows_its_reason_and_attempts_and_stays(
    engine: Engine, queue: Queue, backend: Backend
) -> None:
    (message,) = publish(backend, 1)
    (first,) = fetch_n(backend, 1)
    backend.retry_later(first, 0)
    (second,) = fetch_n(backend, 1)
    assert second.attempt == 2
    backend.dead_letter(second, "handler send_email failed: SMTP 550")

    (letter,) = waiting_dead_letters(backend, 1)
    assert letter.message_id == message.message_id
    assert json.loads(letter.body) == message.body
    assert letter.reason == "handler send_email failed: SMTP 550"
    assert letter.attempts == 2
    assert letter.headers == {"source": "tests"}
    assert letter.handler == "send_email"

    # Reading is a peek: again, by key, and with the engine's own client, it is still there.
    assert [d.key for d in backend.dead_letters()] == [letter.key]
    assert [d.message_id for d in backend.dead_letters(keys=[letter.key])] == [message.message_id]
    assert backend.dead_letters(keys=["no-such-key"]) == []
    assert wait_for(lambda: unsettled(backend) == 1, 10, "one dead letter counted")
    (held,) = engine.read_dead_letters(queue, 1)
    assert held.message_id == message.message_id


def test_redrive_one_puts_it_back_with_attempts_reset(
    engine: Engine, queue: Queue, backend: Backend
) -> None:
    batch = publish(backend, 2)
    dead_letter_all(backend, 2)
    letters = waiting_dead_letters(backend, 2)
    chosen = next(d for d in letters if d.message_id == batch[0].message_id)

    assert backend.redrive([chosen.key]) == 1

    (again,) = fetch_n(backend, 1)
    assert again.message_id == batch[0].message_id
    assert again.json() == batch[0].body
    assert again.attempt == 1
    assert again.headers == {"source": "tests"}
    if engine.type != QueueType.SQS:  # standard SQS queues have no message groups
        assert again.ordering_key == "orders:0"
    backend.ack(again)
    fetch_nothing(backend)
    (left,) = waiting_dead_letters(backend, 1)
    assert left.message_id == batch[1].message_id
    assert wait_for(lambda: unsettled(backend) == 1, 10, "one dead letter left")


def test_redrive_by_message_id_and_redrive_all(
    engine: Engine, queue: Queue, backend: Backend
) -> None:
    batch = publish(backend, 3)
    dead_letter_all(backend, 3)
    waiting_dead_letters(backend, 3)

    assert backend.redrive([batch[2].message_id]) == 1
    (back,) = fetch_n(backend, 1)
    assert back.message_id == batch[2].message_id
    backend.ack(back)

    assert backend.redrive(None) == 2
    rest = fetch_n(backend, 2)
    assert {d.message_id for d in rest} == {m.message_id for m in batch[:2]}
    assert all(d.attempt == 1 for d in rest)
    for delivery in rest:
        backend.ack(delivery)
    waiting_dead_letters(backend, 0)
    assert backend.redrive(None) == 0
    assert wait_for(lambda: unsettled(backend) == 0, 10, "no dead letter counted")


def test_delete_a_dead_letter(engine: Engine, queue: Queue, backend: Backend) -> None:
    batch = publish(backend, 2)
    dead_letter_all(backend, 2)
    letters = waiting_dead_letters(backend, 2)
    doomed = next(d for d in letters if d.message_id == batch[0].message_id)

    assert backend.delete_dead_letter(doomed.key) is True
    (left,) = waiting_dead_letters(backend, 1)
    assert left.message_id == batch[1].message_id
    assert backend.delete_dead_letter(doomed.key) is False
    fetch_nothing(backend)  # deleted means gone, not sent back
    assert wait_for(lambda: unsettled(backend) == 1, 10, "one dead letter left")


def test_purge_empties_the_queue_and_keeps_dead_letters(
    engine: Engine, queue: Queue, backend: Backend
) -> None:
    publish(backend, 1, tag="dead")
    dead_letter_all(backend, 1)
    waiting_dead_letters(backend, 1)
    # No consumer holds anything: RabbitMQ would push new messages to it (prefetch), and a
    # Kafka group with a member refuses the offset commit that zeroes the lag after a purge.
    backend.close()
    publish(backend, 3, tag="waiting")
    assert wait_for(lambda: backend.stats().depth == 3, 10, "three waiting")

    dropped = backend.purge()

    if engine.type != QueueType.SQS:  # SQS does not say how many it dropped
        assert dropped == 3
    assert wait_for(lambda: backend.stats().depth == 0, 10, "an empty queue")
    fetch_nothing(backend, wait_seconds=1.0)
    assert engine.unacknowledged(queue, backend) == 0
    (letter,) = waiting_dead_letters(backend, 1)
    assert json.loads(letter.body)["tag"] == "dead"


def test_the_back_office_services_on_every_engine(
    engine: Engine, queue: Queue, backend: Backend
) -> None:
    """What the pages call: live figures (Kafka's settled dead letters left out), find, send
    back and delete through ``queues.dead_letters``, each with a backend of its own."""
    batch = publish(backend, 2)
    dead_letter_all(backend, 2)
    waiting_dead_letters(backend, 2)

    def dead_now(count: int) -> bool:
        live = services.live_stats(queue)
        assert live.ok, live.problem
        assert live.stats is not None
        return live.stats.dead_letters == count

    wait_for(lambda: dead_now(2), 10, "two dead letters in the live figures")
    found = dead_letters.find_dead_letter(queue, batch[1].message_id)
    assert found.message_id == batch[1].message_id
    assert dead_letters.find_dead_letter(queue, found.key) == found
    with pytest.raises(dead_letters.DeadLetterNotFound):
        dead_letters.find_dead_letter(queue, "no-such-key")

    assert dead_letters.redrive(queue, [found.key]) == 1
    wait_for(lambda: dead_now(1), 10, "one dead letter in the live figures")
    (left,) = dead_letters.list_dead_letters(queue)
    assert left.message_id == batch[0].message_id
    dead_letters.delete_dead_letter(queue, left.key)
    wait_for(lambda: dead_now(0), 10, "no dead letter in the live figures")
    with pytest.raises(dead_letters.DeadLetterNotFound):
        dead_letters.delete_dead_letter(queue, left.key)
    (back,) = fetch_n(backend, 1)
    assert back.message_id == batch[1].message_id


def test_send_back_edited_and_with_another_handler(
    engine: Engine, queue: Queue, backend: Backend
) -> None:
    """An admin fixes dead letters before they go back: one with a new body, two with another
    handler. The copies on the queue carry the change and say who made it; the dead letters
    are gone; the ordering keys are kept (where the engine has them: not SQS standard)."""
    batch = publish(backend, 3)
    keys = {d.message_id: d.ordering_key for d in dead_letter_all(backend, 3)}
    letters = {x.message_id: x for x in waiting_dead_letters(backend, 3)}
    first, second, third = (letters[m.message_id] for m in batch)

    dead_letters.send_back_edited(queue, first.key, {"handler": "log", "n": 100}, editor="ada")
    assert (
        dead_letters.send_back_with_handler(queue, [second.key, third.key], "log", editor="ada")
        == 2
    )
    wait_for(lambda: not dead_letters.list_dead_letters(queue) or None, 15, "no dead letters")

    back = {json.loads(d.body)["n"]: d for d in fetch_n(backend, 3)}
    assert sorted(back) == [1, 2, 100]
    for n, original in ((100, batch[0]), (1, batch[1]), (2, batch[2])):
        copy = back[n]
        assert json.loads(copy.body)["handler"] == "log"
        assert copy.message_id != original.message_id
        assert copy.headers["edited-by"] == "ada"
        assert copy.headers["edited-from-message-id"] == original.message_id
        assert copy.headers["edited-from-handler"] == "send_email"
        assert copy.headers["source"] == "tests", "the message's own headers are kept"
        assert copy.ordering_key == keys[original.message_id]  # as the engine keeps it
        assert copy.attempt == 1, "attempts start again"
    assert json.loads(back[1].body)["tag"] == "", "the rest of the body is kept"
    assert "tag" not in json.loads(back[100].body), "the edited body replaces the whole body"


@pytest.mark.django_db
def test_an_edit_the_queue_refuses_sends_nothing_and_keeps_the_dead_letter() -> None:
    queue = services.create_queue(name="strict", type="database", allowed_handlers=["log"])
    with get_backend(queue) as backend:
        publish(backend, 1)
        dead_letter_all(backend, 1)
    (letter,) = dead_letters.list_dead_letters(queue)
    with pytest.raises(HandlerNotAllowed):
        dead_letters.send_back_edited(queue, letter.key, {"handler": "webhook"}, editor="ada")
    with pytest.raises(BadMessage):
        dead_letters.send_back_edited(queue, letter.key, {"n": 1}, editor="ada")
    assert [x.key for x in dead_letters.list_dead_letters(queue)] == [letter.key]
    assert queue.database_messages.exclude(state=MessageState.DEAD).count() == 0


@pytest.mark.django_db
def test_database_purge_leaves_in_flight_rows() -> None:
    """Purging drops ready rows (delayed retries too); a handler working on a row still
    acknowledges it."""
    queue = Queue.objects.create(name="purged", type=QueueType.DATABASE)
    with get_backend(queue) as backend:
        publish(backend, 3)
        (working,) = fetch_n(backend, 1)
        assert backend.purge() == 2
        backend.ack(working)
        assert backend.stats().as_dict() == {
            "depth": 0,
            "in_flight": 0,
            "dead_letters": 0,
            "lag": None,
            "consumers": None,
        }


# -- Kafka's settled marks (pure logic; the engine tests above prove them on a broker) --------


def test_settled_offsets_compact_into_the_committed_offset() -> None:
    settled = Settled.read(committed=-1001, metadata=None, low=3)
    assert settled.offset == 3
    for offset in (5, 6, 9):
        settled.settle(offset)
    assert (settled.offset, settled.above) == (3, {5, 6, 9})
    assert settled.metadata() == "v1:5-6,9"
    assert [settled.has(o) for o in (2, 3, 4, 5, 6, 7)] == [True, False, False, True, True, False]
    settled.settle(3)
    settled.settle(4)
    assert (settled.offset, settled.above) == (7, {9})


def test_settled_marks_read_back_from_metadata() -> None:
    settled = Settled.read(committed=7, metadata="v1:9,11-13", low=0)
    assert (settled.offset, settled.above) == (7, {9, 11, 12, 13})
    # The log start moved past some marks (retention): those are dropped.
    later = Settled.read(committed=7, metadata="v1:9,11-13", low=12)
    assert (later.offset, later.above) == (14, set())
    assert Settled.read(committed=4, metadata="garbage", low=0).above == set()
    assert _parse("v1:1-3,7") == {1, 2, 3, 7}
    assert _ranges([1, 2, 3, 7, 9, 10]) == "1-3,7,9-10"
    assert _ranges([]) == ""
