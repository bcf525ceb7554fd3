"""The one interface every queue backend implements, and what the engines share.

A backend wraps one ``Queue`` row and speaks to its engine with the engine's own client.
The producer side (``provision``, ``check``, ``publish``, ``stats``) serves the API and the
outbox relay; the consumer side (``fetch``, ``ack``, ``retry_later``, ``dead_letter``,
``extend``) serves the workers. Every network call has a bounded timeout and every engine
error leaves as a ``queues.errors.QueueError``. The values passed around are in
``queues.messages``.

Where engines differ, the backend class says so (its capabilities), rather than a switch on
the queue type elsewhere or one engine's behaviour emulated on another:

============  =================  ===============================  ==============================
engine        lease (``leases``) handler returned without ack     shutdown: a delivery not done
                                 (``not_acked``)                  (``release``)
============  =================  ===============================  ==============================
database      visibility timeout left to expire: the row is        ``retry_later(0)``: ready
              (``extend``)       claimed again after the timeout  again at once
sqs           visibility timeout left to expire: SQS shows it      ``retry_later(0)``:
              (``extend``)       again after the timeout          ChangeMessageVisibility 0
kafka         none               ``retry_later(visibility)`` (a   nothing (``releases_on_close``):
                                 copy on ``.retry``, then ack),   ``close`` leaves the group
                                 else it would pin the partition  without committing it, so the
                                 commit until a restart           group reads it again
rabbitmq      none (consumer     ``retry_later(visibility)``      nothing (``releases_on_close``):
              timeout 30 min)    (``.retry`` queue, TTL, DLX      ``close`` closes the channel,
                                 back), else it would hold a      RabbitMQ requeues it
                                 prefetch slot until a restart
============  =================  ===============================  ==============================

On the last attempt a message that was not acknowledged is dead-lettered by Kafka and RabbitMQ
workers (the database backend and SQS redrive do that themselves on the next receive).

A message's priority (``OutgoingMessage.priority``, ``priority_support``): the database queue
claims the highest first; RabbitMQ orders by the AMQP ``priority`` property in a queue declared
with ``x-max-priority`` (``Queue.max_priority``) and ignores it otherwise; SQS and Kafka have
no priorities and ignore it.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol
from urllib.parse import SplitResult, urlsplit

from queues.errors import MessageTooLarge, QueueError
from queues.messages import (
    HEADER_ATTEMPT,
    HEADER_REASON,
    MAX_REASON,
    CheckResult,
    DeadLetter,
    Delivery,
    OutgoingMessage,
    PublishResult,
    QueueStats,
    user_headers,
)

if TYPE_CHECKING:
    from types import TracebackType

KIB = 1024
MIB = 1024 * KIB

#: ``add(field, message)``: how ``clean_queue`` reports a validation error on a queue field.
AddError = Callable[[str, str], None]


def split_url(url: str) -> SplitResult | None:
    """``url``'s parts, or None when no client could use it: a port that is not a number from
    0 to 65535, an unclosed IPv6 bracket, white space or control characters."""
    if any(c.isspace() or not c.isprintable() for c in url):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises ValueError for a bad port
    except ValueError:
        return None
    return parts


@dataclass(frozen=True)
class PrioritySupport:
    """Whether a queue's engine orders its messages by ``OutgoingMessage.priority``
    (``honoured``), and what it does with it, in words for the pages and the API."""

    honoured: bool
    detail: str


class QueueConfig(Protocol):
    """What a backend reads of its queue: a ``queues.models.Queue`` (a Protocol, so that the
    interface does not import the models; only the database backend, whose messages are rows,
    does)."""

    name: str
    type: str
    url: str
    region: str
    username: str
    visibility_timeout: int
    max_attempts: int
    fifo: bool
    partitions: int | None
    max_priority: int

    @property
    def pk(self) -> Any: ...

    @property
    def connection_url(self) -> str: ...

    @property
    def effective_partitions(self) -> int: ...

    @property
    def has_secret(self) -> bool: ...

    def get_secret(self) -> str: ...


class DeadLetterStore(Protocol):
    """What an engine's dead-letter helper does; ``Backend.dead_letter_store`` gives it."""

    def peek(self, limit: int, keys: Iterable[str] | None) -> list[DeadLetter]: ...

    def redrive(self, message_ids: Iterable[str] | None) -> int: ...

    def delete(self, message_id: str) -> bool: ...


class Backend(abc.ABC):
    """One queue on one engine. Not thread-safe: one instance per thread (or per worker)."""

    #: Largest message the backend accepts, as measured by ``message_size``.
    max_message_bytes: ClassVar[int]
    #: Name the size error uses for the engine.
    engine: ClassVar[str]

    # -- capabilities: what the worker, the relay and the admin pages ask ------------------------

    #: Fetched messages are leased for the queue's visibility timeout: ``extend`` keeps them,
    #: and one not acknowledged comes back by itself when its lease ends.
    leases: ClassVar[bool] = False
    #: ``close`` gives unfinished deliveries back by itself (else ``release`` does, one by one).
    releases_on_close: ClassVar[bool] = False
    #: The backend works with the calling thread's resources (the database backend publishes
    #: and claims with the thread's Django connection, inside the caller's transaction): call
    #: it from the thread that made it, never from a helper thread.
    thread_bound: ClassVar[bool] = False
    #: Settling dead letters is a read-modify-write on the engine: two admins at once must be
    #: serialised (``queues.dead_letters`` takes a row lock on the queue).
    serialise_admin: ClassVar[bool] = False
    #: The messages live in the platform's own database: counting them is one local query
    #: (the dashboard counts such queues' dead letters itself instead of asking the engine).
    in_database: ClassVar[bool] = False
    #: Header prefixes the engine mixes into a message's own headers (dropped on the way back).
    foreign_headers: ClassVar[tuple[str, ...]] = ()
    #: The queue fields, of those only some types take, that this type takes.
    queue_options: ClassVar[frozenset[str]] = frozenset()
    #: The setting a queue with a blank url connects to (the deployment's own engine), and
    #: whether the queue is unusable without one ("" : the engine needs no url).
    url_setting: ClassVar[str] = ""
    url_required: ClassVar[bool] = False
    #: The handle this backend puts on its deliveries.
    handle_type: ClassVar[type]
    #: Longest dead-letter reason the engine carries.
    max_reason: ClassVar[int] = MAX_REASON

    def __init__(self, queue: QueueConfig) -> None:
        self.queue = queue

    @classmethod  # noqa: B027
    def clean_queue(cls, queue: QueueConfig, add: AddError) -> None:
        """Validate a queue's connection and options for this engine (``Queue.clean`` calls
        it), reporting each problem with ``add(field, message)``."""

    @classmethod
    def priority_support(cls, queue: QueueConfig) -> PrioritySupport:
        """What the engine does with a message's priority on ``queue``: by default nothing
        (the engine has no priorities; the backend ignores ``OutgoingMessage.priority``)."""
        return PrioritySupport(False, f"{cls.engine} has no message priorities: ignored.")

    @classmethod
    def locks_keys(cls, queue: QueueConfig) -> bool:
        """The engine itself delivers none of a key's later messages while one of the key is
        out (an SQS FIFO group): a worker gives back what it holds behind a retry at once."""
        return False

    def prepare(self, concurrency: int) -> None:  # noqa: B027
        """Tune the backend before a worker's first fetch with ``concurrency`` handlers."""

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

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Move the message to the dead-letter queue with ``reason``: by default a copy is
        published there (``forward``), then the original is settled."""
        self.forward(
            delivery, self.dead_letter_destination, self.dead_letter_headers(delivery, reason)
        )

    # -- what the worker does where engines differ --------------------------------------------

    def not_acked(self, delivery: Delivery, max_attempts: int, delay: float) -> str:
        """Make a delivery its handler left unsettled come back; returns what was done, for
        the log. With a lease it comes back by itself; without one it is sent to retry (or,
        on its last attempt, dead-lettered), else it would hold its place until a restart."""
        if self.leases:
            return f"it is delivered again when its lease ends (within {delay:g}s)"
        if delivery.attempt >= max_attempts:
            self.dead_letter(
                delivery,
                f"Not acknowledged on attempt {delivery.attempt} of {max_attempts} "
                "(the handler returned without ctx.ack()).",
            )
            return "it was the last attempt: dead-lettered"
        self.retry_later(delivery, delay)
        return f"it is delivered again in {delay:g}s"

    def release(self, delivery: Delivery) -> str:
        """Give back a delivery a stopping worker did not finish; returns what was done."""
        if self.releases_on_close:
            return "the engine delivers it again once this consumer closes"
        self.retry_later(delivery, 0)
        return "it can be delivered again at once"

    # -- administration: dead letters and purge (see queues/dead_letters.py) -----------------

    def dead_letter_store(self) -> DeadLetterStore | None:
        """The engine's dead-letter helper (its ``dead_letters.py``, built on the engine's
        client), or None when this engine has none here."""
        return None

    def _store(self, what: str) -> DeadLetterStore:
        store = self.dead_letter_store()
        if store is None:
            raise QueueError(f"{self.engine} queues cannot {what} here.")
        return store

    def dead_letters(self, limit: int = 50, keys: Iterable[str] | None = None) -> list[DeadLetter]:
        """Up to ``limit`` dead letters, left where they are (a peek, never a consume).

        ``keys`` narrows the scan to those keys or message ids, and ends it once all are found.
        """
        return self._store("list dead letters").peek(limit, keys)

    def redrive(self, message_ids: Iterable[str] | None = None) -> int:
        """Move dead letters (all when None) back to the queue with the attempt count reset,
        removing them from the dead-letter queue; returns how many moved. At least once: a
        failure between the two steps can leave a copy in both places, never in neither."""
        return self._store("send dead letters back").redrive(message_ids)

    def delete_dead_letter(self, message_id: str) -> bool:
        """Remove one dead letter (every copy of a message id); False when none was found."""
        return self._store("delete dead letters").delete(message_id)

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

    # -- the shared template ------------------------------------------------------------------

    def message_size(self, message: OutgoingMessage) -> int:
        """Bytes the engine counts against its limit (the body by default)."""
        return len(message.body_bytes())

    def check_sizes(
        self, messages: Sequence[OutgoingMessage], sizes: Sequence[int] | None = None
    ) -> None:
        """Refuse the whole batch before anything is sent when one message is too large.
        ``sizes``: the messages' sizes when the caller measured them already."""
        if sizes is None:
            sizes = [self.message_size(message) for message in messages]
        for message, size in zip(messages, sizes, strict=True):
            if size > self.max_message_bytes:
                raise MessageTooLarge(message.message_id, size, self.max_message_bytes, self.engine)

    def handle(self, delivery: Delivery) -> Any:
        """The delivery's handle, checked to be one this kind of backend put there."""
        if not isinstance(delivery.handle, self.handle_type):
            raise TypeError(f"This delivery was not fetched by a {type(self).__name__}.")
        return delivery.handle

    def user_headers(self, headers: Mapping[str, Any]) -> dict[str, str]:
        """A delivery's or dead letter's own headers: ours and the engine's dropped."""
        return user_headers(headers, self.foreign_headers)

    def forward(
        self,
        delivery: Delivery,
        destination: str,
        headers: Mapping[str, str],
        delay_seconds: float | None = None,
    ) -> None:
        """Publish a copy of the delivery to ``destination`` (the retry or dead-letter queue)
        with ``headers``, then settle the original. At least once: a failure in between leaves
        the original, which is delivered again."""
        self.publish_copy(delivery, destination, headers, delay_seconds)
        self.settle_forwarded(delivery)

    def publish_copy(
        self,
        delivery: Delivery,
        destination: str,
        headers: Mapping[str, str],
        delay_seconds: float | None = None,
    ) -> None:
        """Engines that forward copies publish one here (and wait for the engine's answer)."""
        raise QueueError(f"{self.engine} queues do not forward copies of a message.")

    def settle_forwarded(self, delivery: Delivery) -> None:
        """Remove the original of a forwarded copy (``ack`` by default)."""
        self.ack(delivery)

    @property
    def dead_letter_destination(self) -> str:
        """Where ``dead_letter`` forwards a copy."""
        raise QueueError(f"{self.engine} queues have no dead-letter queue to forward to.")

    def dead_letter_headers(self, delivery: Delivery, reason: str) -> dict[str, str]:
        """The copy's headers: the message's own, its attempt number and the reason."""
        return {
            **delivery.headers,
            HEADER_ATTEMPT: str(delivery.attempt),
            HEADER_REASON: reason[: self.max_reason],
        }

    def retry_headers(self, delivery: Delivery, delay_seconds: float) -> dict[str, str]:
        """A retry copy's headers: the message's own and the next attempt number."""
        return {**delivery.headers, HEADER_ATTEMPT: str(delivery.attempt + 1)}
