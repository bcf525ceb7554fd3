"""The one interface every queue backend implements, and the values it passes around.

A backend wraps one ``Queue`` row and speaks to its engine with the engine's own client.
The producer side (``provision``, ``check``, ``publish``, ``stats``) serves the API and the
outbox relay; the consumer side (``fetch``, ``ack``, ``retry_later``, ``dead_letter``,
``extend``) serves the workers. Every network call has a bounded timeout and every engine
error leaves as a ``queues.errors.QueueError``.

Reserved headers (``quaymaster-*``) carry our message id, the attempt number, a retry's
not-before time and a dead letter's reason on engines without a native field for them.
"""

from __future__ import annotations

import abc
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from queues.errors import BadMessage, MessageTooLarge, QueueError

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType

    from queues.dead_letters import DeadLetter
    from queues.models import Queue

HEADER_PREFIX = "quaymaster-"
HEADER_MESSAGE_ID = "quaymaster-message-id"
HEADER_ATTEMPT = "quaymaster-attempt"
HEADER_NOT_BEFORE = "quaymaster-not-before"  # epoch milliseconds
HEADER_REASON = "quaymaster-dead-letter-reason"
#: A dead letter's reason travels in a header: long tracebacks are cut to this many characters.
MAX_REASON = 4096

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class OutgoingMessage:
    """A message to publish. ``body`` is bytes as is, or a JSON-serialisable mapping."""

    message_id: str
    body: bytes | Mapping[str, Any]
    ordering_key: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def new(
        cls,
        body: bytes | Mapping[str, Any],
        ordering_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> OutgoingMessage:
        return cls(str(uuid.uuid4()), body, ordering_key, dict(headers or {}))

    def __post_init__(self) -> None:
        try:
            uuid.UUID(self.message_id)
        except (ValueError, TypeError, AttributeError) as exc:
            raise BadMessage(f"message_id must be a UUID, not {self.message_id!r}.") from exc
        for name, value in self.headers.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise BadMessage("Header names and values must be strings.")
            if name.lower().startswith(HEADER_PREFIX):
                raise BadMessage(f"Header {name!r}: the '{HEADER_PREFIX}' prefix is reserved.")

    @property
    def is_json(self) -> bool:
        return not isinstance(self.body, bytes)

    def body_bytes(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class PublishResult:
    """One published message: our id plus the engine's own reference (in subclasses)."""

    message_id: str

    def as_response(self) -> dict[str, Any]:
        """The publish API's answer for this message (the API adds ``queue-id``)."""
        return {"message-id": self.message_id, **self.broker_reference()}

    def broker_reference(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class SqsPublishResult(PublishResult):
    sqs_id: str

    def broker_reference(self) -> dict[str, Any]:
        return {"sqs-id": self.sqs_id}


@dataclass(frozen=True)
class KafkaPublishResult(PublishResult):
    partition: int
    offset: int

    def broker_reference(self) -> dict[str, Any]:
        return {"kafka-offset": {"partition": self.partition, "offset": self.offset}}


@dataclass(frozen=True)
class BrokerIdPublishResult(PublishResult):
    """RabbitMQ: the AMQP ``message-id`` property (RabbitMQ assigns no id of its own).
    Database: the row's primary key."""

    broker_id: str | int

    def broker_reference(self) -> dict[str, Any]:
        return {"broker-id": self.broker_id}


@dataclass(frozen=True)
class CheckResult:
    """``ok``: the engine answered and accepted the credentials. ``provisioned``: the queue
    exists there (None when the engine cannot tell cheaply)."""

    ok: bool
    detail: str
    provisioned: bool | None = None


@dataclass(frozen=True)
class QueueStats:
    """Counts as the engine reports them; None where the engine has no such notion.

    depth: messages waiting (not in flight); in_flight: fetched, not yet acknowledged;
    dead_letters: messages in the dead-letter queue; lag: Kafka only, the consumer group's
    distance from the end of the log; consumers: RabbitMQ only.
    """

    depth: int | None
    in_flight: int | None
    dead_letters: int | None
    lag: int | None = None
    consumers: int | None = None

    def as_dict(self) -> dict[str, int | None]:
        return {
            "depth": self.depth,
            "in_flight": self.in_flight,
            "dead_letters": self.dead_letters,
            "lag": self.lag,
            "consumers": self.consumers,
        }


@dataclass
class Delivery:
    """A fetched message. ``attempt`` is 1 on first delivery. ``handle`` belongs to the
    backend that fetched it: pass the delivery back to that same backend instance."""

    message_id: str
    body: bytes
    attempt: int
    headers: dict[str, str]
    handle: Any
    ordering_key: str | None = None

    def json(self) -> Any:
        return json.loads(self.body)


class Backend(abc.ABC):
    """One queue on one engine. Not thread-safe: one instance per thread (or per worker)."""

    #: Largest message the backend accepts, as measured by ``message_size``.
    max_message_bytes: ClassVar[int]
    #: Name the size error uses for the engine.
    engine: ClassVar[str]
    #: The backend works with the calling thread's resources (the database backend publishes
    #: and claims with the thread's Django connection, inside the caller's transaction): call
    #: it from the thread that made it, never from a helper thread.
    thread_bound: ClassVar[bool] = False

    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    # -- producer side ------------------------------------------------------------------------

    @abc.abstractmethod
    def provision(self) -> None:
        """Create the queue and its dead-letter (and retry) companions if missing. Idempotent."""

    @abc.abstractmethod
    def check(self) -> CheckResult:
        """Connect and authenticate; raise BrokerUnavailable or BadConfiguration if that fails."""

    @abc.abstractmethod
    def publish(self, messages: Sequence[OutgoingMessage]) -> list[PublishResult]:
        """Publish a batch; results in the order of ``messages``.

        Raises MessageTooLarge before sending anything when any message is over the limit.
        """

    @abc.abstractmethod
    def stats(self) -> QueueStats: ...

    # -- consumer side ------------------------------------------------------------------------

    @abc.abstractmethod
    def fetch(self, max_messages: int = 10, wait_seconds: float = 1.0) -> list[Delivery]:
        """Up to ``max_messages`` deliveries, waiting at most about ``wait_seconds`` for one."""

    @abc.abstractmethod
    def ack(self, delivery: Delivery) -> None:
        """The handler is done: remove the message for good."""

    def ack_many(self, deliveries: Sequence[Delivery]) -> list[QueueError | None]:
        """Acknowledge several deliveries, one result each: None, or the error that kept that
        one from being acknowledged (``LeaseLost``, ``BrokerUnavailable``…). Backends override
        it to settle them in one round trip; this one acks them one by one."""
        results: list[QueueError | None] = []
        for delivery in deliveries:
            try:
                self.ack(delivery)
            except QueueError as exc:
                results.append(exc)
            else:
                results.append(None)
        return results

    @abc.abstractmethod
    def retry_later(self, delivery: Delivery, delay_seconds: float) -> None:
        """Deliver the message again in ``delay_seconds`` with ``attempt + 1``."""

    @abc.abstractmethod
    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Move the message to the dead-letter queue with ``reason``."""

    # -- administration: dead letters and purge (see queues/dead_letters.py) -----------------

    def dead_letters(self, limit: int = 50, keys: Iterable[str] | None = None) -> list[DeadLetter]:
        """Up to ``limit`` dead letters, left where they are (a peek, never a consume).

        ``keys`` narrows the scan to those keys or message ids, and ends it once all are found.
        """
        raise QueueError(f"{self.engine} queues do not list dead letters here.")

    def redrive(self, message_ids: Iterable[str] | None = None) -> int:
        """Move dead letters (all when None) back to the queue with the attempt count reset,
        removing them from the dead-letter queue; returns how many moved. At least once: a
        failure between the two steps can leave a copy in both places, never in neither."""
        raise QueueError(f"{self.engine} queues cannot send dead letters back here.")

    def delete_dead_letter(self, message_id: str) -> bool:
        """Remove one dead letter (every copy of a message id); False when none was found."""
        raise QueueError(f"{self.engine} queues cannot delete dead letters here.")

    def purge(self) -> int | None:
        """Drop every message waiting in the queue (delayed retries included; dead letters
        and messages a handler is working on are the engine's call, see each backend).
        Returns how many were dropped, or None when the engine does not say."""
        raise QueueError(f"{self.engine} queues cannot be purged here.")

    def settled_dead_letters(self) -> int:
        """Dead letters ``stats()`` still counts though an admin already sent them back or
        deleted them. Zero except on Kafka, whose log cannot drop a record from its middle."""
        return 0

    def extend(self, delivery: Delivery, seconds: float) -> None:  # noqa: B027
        """Keep the delivery ours for ``seconds`` more. No-op where leases do not exist."""

    def close(self) -> None:  # noqa: B027
        """Release connections and client threads. Idempotent."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- helpers ------------------------------------------------------------------------------

    def message_size(self, message: OutgoingMessage) -> int:
        """Bytes the engine counts against its limit (the body by default)."""
        return len(message.body_bytes())

    def check_sizes(self, messages: Sequence[OutgoingMessage]) -> None:
        """Refuse the whole batch before anything is sent when one message is too large."""
        for message in messages:
            size = self.message_size(message)
            if size > self.max_message_bytes:
                raise MessageTooLarge(message.message_id, size, self.max_message_bytes, self.engine)
