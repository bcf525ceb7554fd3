"""The values a queue passes around: a message to publish, its publish result, a fetched
delivery, a connection check, stats and a dead letter. The bottom of the queues app: it
imports nothing of it but ``queues.errors``.

``OutgoingMessage.priority`` (None: not given) is passed to the engines that have message
priorities (the database queue; RabbitMQ with a priority queue) and ignored by the others
(SQS, Kafka): each backend says which with ``priority_support``.

Reserved headers (``quaymaster-*``) carry our message id, the attempt number, a retry's
not-before time and a dead letter's reason on engines without a native field for them; a
message's own headers never use the prefix, and ``user_headers`` drops them on the way back.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from queues.errors import BadMessage

HEADER_PREFIX = "quaymaster-"
#: Highest message priority: AMQP's priority is one octet (jobs use 0 to 9).
MAX_PRIORITY = 255
HEADER_MESSAGE_ID = "quaymaster-message-id"
HEADER_ATTEMPT = "quaymaster-attempt"
HEADER_NOT_BEFORE = "quaymaster-not-before"  # epoch milliseconds
HEADER_REASON = "quaymaster-dead-letter-reason"
#: A dead letter's reason travels in a header: long tracebacks are cut to this many characters.
MAX_REASON = 4096
#: Longest body the pages show in the list of dead letters.
PREVIEW_CHARS = 120


def user_headers(headers: Mapping[str, Any], foreign: tuple[str, ...] = ()) -> dict[str, str]:
    """The message's own headers: ours (``quaymaster-*``) dropped, and the engine's own where
    it mixes them in (``foreign`` prefixes, e.g. RabbitMQ's ``x-``). Values that are not text
    are dropped; bytes are decoded."""
    own: dict[str, str] = {}
    for name, value in headers.items():
        if str(name).lower().startswith((HEADER_PREFIX, *foreign)):
            continue
        if isinstance(value, bytes):
            own[str(name)] = value.decode(errors="replace")
        elif isinstance(value, str):
            own[str(name)] = value
    return own


class JsonText(bytes):
    """A body that is JSON text already (as a database hands a stored JSON column over): sent
    as it is, and still a JSON body (content type, the database queue's column). The relay
    passes outbox bodies through this way rather than decoding and encoding each again."""

    __slots__ = ()


@dataclass(frozen=True)
class OutgoingMessage:
    """A message to publish. ``body`` is bytes as is, a JSON-serialisable mapping, or
    ``JsonText``.
    ``priority``: higher first, on the engines that have priorities (None: not given)."""

    message_id: str
    body: bytes | Mapping[str, Any]
    ordering_key: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    priority: int | None = None

    @classmethod
    def new(
        cls,
        body: bytes | Mapping[str, Any],
        ordering_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        priority: int | None = None,
    ) -> OutgoingMessage:
        return cls(str(uuid.uuid4()), body, ordering_key, dict(headers or {}), priority)

    @classmethod
    def stored(
        cls, message_id: str, body: bytes | Mapping[str, Any], ordering_key: str | None
    ) -> OutgoingMessage:
        """A message without headers or priority read back from a column that holds only
        UUIDs (the outbox's ``message_id``), built without parsing the id again: that parse
        was a tenth of the relay's time."""
        message = object.__new__(cls)
        message.__dict__.update(
            message_id=message_id, body=body, ordering_key=ordering_key, headers={}, priority=None
        )
        return message

    def __post_init__(self) -> None:
        try:
            uuid.UUID(self.message_id)
        except (ValueError, TypeError, AttributeError) as exc:
            raise BadMessage(f"message_id must be a UUID, not {self.message_id!r}.") from exc
        if self.priority is not None and (
            isinstance(self.priority, bool)
            or not isinstance(self.priority, int)
            or not 0 <= self.priority <= MAX_PRIORITY
        ):
            raise BadMessage(f"priority must be a whole number from 0 to {MAX_PRIORITY}.")
        for name, value in self.headers.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise BadMessage("Header names and values must be strings.")
            if name.lower().startswith(HEADER_PREFIX):
                raise BadMessage(f"Header {name!r}: the '{HEADER_PREFIX}' prefix is reserved.")

    @property
    def is_json(self) -> bool:
        return not isinstance(self.body, bytes) or isinstance(self.body, JsonText)

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

    @property
    def broker_key(self) -> str:
        """The engine's id as one searchable string (``queues.models.MessageTrace``)."""
        raise NotImplementedError


@dataclass(frozen=True)
class SqsPublishResult(PublishResult):
    sqs_id: str

    def broker_reference(self) -> dict[str, Any]:
        return {"sqs-id": self.sqs_id}

    @property
    def broker_key(self) -> str:
        return self.sqs_id


@dataclass(frozen=True)
class KafkaPublishResult(PublishResult):
    partition: int
    offset: int

    def broker_reference(self) -> dict[str, Any]:
        return {"kafka-offset": {"partition": self.partition, "offset": self.offset}}

    @property
    def broker_key(self) -> str:
        return f"{self.partition}:{self.offset}"


@dataclass(frozen=True)
class BrokerIdPublishResult(PublishResult):
    """RabbitMQ: the AMQP ``message-id`` property (RabbitMQ assigns no id of its own).
    Database: the row's primary key."""

    broker_id: str | int

    def broker_reference(self) -> dict[str, Any]:
        return {"broker-id": self.broker_id}

    @property
    def broker_key(self) -> str:
        return str(self.broker_id)


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


@dataclass(frozen=True)
class DeadLetter:
    """One message in a dead-letter queue, as the engine holds it.

    ``attempts`` is None where the engine did not record it. ``at`` is when this copy entered
    the dead-letter queue, where the engine says so (Kafka's record time, SQS's sent time of a
    copy a worker dead-lettered); None otherwise. ``origin`` names the copy in the engine's
    own terms, for an admin who wants to find it with the engine's tools.
    """

    key: str
    message_id: str
    body: bytes
    reason: str
    attempts: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    ordering_key: str | None = None
    at: datetime | None = None
    origin: str = ""

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    @property
    def preview(self) -> str:
        text = " ".join(self.text.split())
        return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"

    @property
    def pretty(self) -> str:
        """The body indented when it is JSON, as it is otherwise."""
        try:
            return json.dumps(json.loads(self.body), indent=2, ensure_ascii=False)
        except ValueError:
            return self.text

    @property
    def handler(self) -> str:
        """The handler the message asked for, when its body is a JSON object naming one."""
        try:
            body = json.loads(self.body)
        except ValueError:
            return ""
        handler = body.get("handler") if isinstance(body, dict) else None
        return handler if isinstance(handler, str) else ""

    def matches(self, wanted: set[str] | None) -> bool:
        return wanted is None or self.key in wanted or self.message_id in wanted
