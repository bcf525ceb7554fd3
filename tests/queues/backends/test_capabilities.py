"""What differs per engine is stated by its backend class, and the shared template in
``Backend`` (forwarding a copy, giving a delivery back, headers, sizes) without an engine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from queues.backends import backend_class
from queues.backends.base import Backend
from queues.errors import BrokerUnavailable, MessageTooLarge
from queues.messages import (
    HEADER_ATTEMPT,
    HEADER_REASON,
    CheckResult,
    Delivery,
    OutgoingMessage,
    PublishResult,
    QueueStats,
    user_headers,
)
from queues.models import Queue, QueueType


@pytest.mark.parametrize(
    ("queue_type", "leases", "releases_on_close", "thread_bound", "serialise_admin", "options"),
    [
        (QueueType.DATABASE, True, False, True, False, set()),
        (QueueType.SQS, True, False, False, False, {"fifo", "region"}),
        (QueueType.KAFKA, False, True, False, True, {"partitions"}),
        (QueueType.RABBITMQ, False, True, False, False, {"max_priority"}),
    ],
)
def test_each_engine_states_its_capabilities(
    queue_type: str,
    leases: bool,
    releases_on_close: bool,
    thread_bound: bool,
    serialise_admin: bool,
    options: set[str],
) -> None:
    engine = backend_class(queue_type)
    assert engine.leases is leases
    assert engine.releases_on_close is releases_on_close
    assert engine.thread_bound is thread_bound
    assert engine.serialise_admin is serialise_admin
    assert engine.queue_options == options


@pytest.mark.parametrize(
    ("queue_type", "options", "honoured"),
    [
        (QueueType.DATABASE, {}, True),
        (QueueType.RABBITMQ, {"max_priority": 10}, True),
        (QueueType.RABBITMQ, {}, False),
        (QueueType.SQS, {"fifo": True, "name": "q.fifo"}, False),
        (QueueType.SQS, {}, False),
        (QueueType.KAFKA, {}, False),
    ],
)
def test_each_engine_states_what_it_does_with_a_priority(
    queue_type: str, options: dict[str, Any], honoured: bool
) -> None:
    queue = Queue(**{"name": "q", "type": queue_type, **options})
    support = backend_class(queue_type).priority_support(queue)
    assert support.honoured is honoured
    assert support.detail


class Recording(Backend):
    """A backend without an engine: it records what the template asks of it."""

    engine = "Recording"
    max_message_bytes = 10
    handle_type = str

    def __init__(self, leases: bool = False, releases_on_close: bool = False) -> None:
        super().__init__(Queue(name="q", type=QueueType.DATABASE))
        self.leases = leases  # type: ignore[misc]
        self.releases_on_close = releases_on_close  # type: ignore[misc]
        self.calls: list[tuple[Any, ...]] = []
        self.fail_copy = False

    def provision(self) -> None: ...

    def check(self) -> CheckResult:
        return CheckResult(True, "")

    def publish(self, messages: Sequence[OutgoingMessage]) -> list[PublishResult]:
        self.check_sizes(messages)
        return []

    def stats(self) -> QueueStats:
        return QueueStats(None, None, None)

    def fetch(self, max_messages: int = 10, wait_seconds: float = 1.0) -> list[Delivery]:
        return []

    def ack(self, delivery: Delivery) -> None:
        self.calls.append(("ack", delivery.message_id))

    def retry_later(self, delivery: Delivery, delay_seconds: float) -> None:
        self.calls.append(("retry_later", delay_seconds))

    @property
    def dead_letter_destination(self) -> str:
        return "q.dlq"

    def publish_copy(
        self,
        delivery: Delivery,
        destination: str,
        headers: Mapping[str, str],
        delay_seconds: float | None = None,
    ) -> None:
        if self.fail_copy:
            raise BrokerUnavailable("down")
        self.calls.append(("copy", destination, dict(headers)))


def delivery(attempt: int = 1) -> Delivery:
    return Delivery("m1", b"{}", attempt, {"source": "tests"}, handle="h")


def test_dead_letter_forwards_a_copy_with_the_reason_then_settles_the_original() -> None:
    backend = Recording()
    backend.dead_letter(delivery(attempt=3), "x" * 5000)
    (copy, settle) = backend.calls
    assert copy[:2] == ("copy", "q.dlq")
    assert copy[2]["source"] == "tests"
    assert copy[2][HEADER_ATTEMPT] == "3"
    assert len(copy[2][HEADER_REASON]) == backend.max_reason
    assert settle == ("ack", "m1")


def test_a_copy_that_fails_leaves_the_original_unsettled() -> None:
    backend = Recording()
    backend.fail_copy = True
    with pytest.raises(BrokerUnavailable):
        backend.dead_letter(delivery(), "boom")
    assert backend.calls == []


def test_not_acked_waits_for_a_lease_or_retries_or_dead_letters_on_the_last_attempt() -> None:
    leased = Recording(leases=True)
    assert "lease ends" in leased.not_acked(delivery(), max_attempts=3, delay=30)
    assert leased.calls == []

    unleased = Recording()
    assert unleased.not_acked(delivery(attempt=1), 3, 30) == "it is delivered again in 30s"
    assert unleased.calls == [("retry_later", 30)]
    unleased.calls.clear()
    assert "dead-lettered" in unleased.not_acked(delivery(attempt=3), 3, 30)
    assert [c[0] for c in unleased.calls] == ["copy", "ack"]


def test_release_gives_back_at_once_unless_closing_does() -> None:
    explicit = Recording()
    assert explicit.release(delivery()) == "it can be delivered again at once"
    assert explicit.calls == [("retry_later", 0)]
    by_close = Recording(releases_on_close=True)
    assert "closes" in by_close.release(delivery())
    assert by_close.calls == []


def test_a_delivery_from_another_backend_is_refused() -> None:
    with pytest.raises(TypeError):
        Recording().handle(Delivery("m1", b"", 1, {}, handle=42))


def test_sizes_measured_by_the_caller_are_checked_before_anything_is_sent() -> None:
    backend = Recording()
    message = OutgoingMessage.new(b"tiny")
    backend.check_sizes([message], [10])
    with pytest.raises(MessageTooLarge):
        backend.check_sizes([message], [11])


def test_user_headers_drop_ours_and_the_engines_own() -> None:
    headers = {"quaymaster-attempt": "2", "x-death": "q", "source": "tests", "raw": b"v", "n": 1}
    assert user_headers(headers) == {"x-death": "q", "source": "tests", "raw": "v"}
    assert user_headers(headers, ("x-",)) == {"source": "tests", "raw": "v"}
    assert backend_class(QueueType.RABBITMQ).foreign_headers == ("x-",)


@pytest.mark.parametrize("priority", [-1, 256, 1.5, True, "9"])
def test_a_message_priority_is_a_whole_number_from_0_to_255(priority: Any) -> None:
    from queues.errors import BadMessage

    with pytest.raises(BadMessage):
        OutgoingMessage.new({"handler": "t"}, priority=priority)
    assert OutgoingMessage.new({"handler": "t"}, priority=255).priority == 255
    assert OutgoingMessage.new({"handler": "t"}).priority is None
