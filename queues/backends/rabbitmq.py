"""RabbitMQ through kombu over py-amqp (publisher confirms, manual acknowledgements).

* Queues (durable, classic), all on the default exchange: ``<name>``, ``<name>.dlq`` and
  ``<name>.retry``. ``<name>`` dead-letters (``x-dead-letter-exchange: ""``) to ``<name>.dlq``,
  so a message rejected without requeue lands there too. ``<name>.retry`` holds delayed
  retries: each message carries its own ``expiration`` and is dead-lettered back to ``<name>``
  when it expires. Per-message TTLs expire only at the head of a queue, so a long delay holds
  back shorter ones behind it.
* Publish: persistent messages (delivery_mode 2) with the AMQP ``message-id`` property set to
  our id, ``mandatory`` (an unroutable message is an error, not a silent drop) and publisher
  confirms (one round trip per message; a nack raises). RabbitMQ gives a message no id of its
  own, so the API's ``broker-id`` is that ``message-id`` property.
* Size: bodies plus header names and values up to 16 MiB (RabbitMQ 4's default
  ``max_message_size``; 3.x allows 128 MiB), checked for the whole batch before sending.
* Fetch: a consumer with prefetch (``basic.qos``) and ``drain_events(timeout)``. There is no
  visibility timeout: an unacknowledged message returns to the queue when the channel closes
  (the consumer crashed or closed), or after RabbitMQ's ``consumer_timeout`` (30 min).
* Attempts: the ``quaymaster-attempt`` header, set by ``retry_later``; a redelivery after a
  crash adds one (``redelivered`` flag), but classic queues do not count repeated crashes.
* ``dead_letter`` publishes a copy to ``<name>.dlq`` with the ``quaymaster-dead-letter-reason``
  header, then acks the original (rejecting would lose the reason).
* Administration lives in ``rabbitmq_dead_letters.py``: reading the DLQ with basic.get and
  requeue, sending back, deleting, purging.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import amqp.exceptions
import kombu
from kombu.exceptions import OperationalError

from queues.backends.base import (
    HEADER_ATTEMPT,
    HEADER_MESSAGE_ID,
    HEADER_PREFIX,
    HEADER_REASON,
    MAX_REASON,
    MIB,
    Backend,
    BrokerIdPublishResult,
    CheckResult,
    Delivery,
    OutgoingMessage,
    PublishResult,
    QueueStats,
)
from queues.backends.rabbitmq_dead_letters import RabbitDeadLetters
from queues.errors import (
    BadConfiguration,
    BrokerUnavailable,
    LeaseLost,
    QueueError,
    QueueMissing,
)
from queues.messages import DeadLetter
from queues.models import Queue

JSON = "application/json"
BINARY = "application/octet-stream"


@dataclass(frozen=True)
class RabbitHandle:
    message: Any  # kombu.Message
    generation: int  # the connection it came on: acks on a later connection are void


class RabbitMqBackend(Backend):
    engine = "RabbitMQ"
    max_message_bytes = 16 * MIB
    connect_timeout = 2.0
    #: Waiting for a publisher confirm (and any other socket operation).
    confirm_timeout = 10.0
    #: Unacknowledged messages the broker pushes ahead of fetch() (at least max_messages).
    prefetch = 10

    def __init__(self, queue: Queue) -> None:
        super().__init__(queue)
        self._connection: kombu.Connection | None = None
        self._generation = 0
        self._publish_channel: Any = None
        self._producer: kombu.Producer | None = None
        self._returned: list[str] = []
        self._consumer: kombu.Consumer | None = None
        self._buffer: list[Any] = []
        #: Delivery tags received on the consumer channel and not settled yet (buffered ones
        #: included): ``ack_many`` acknowledges the oldest run of them with one multiple ack.
        self._unsettled: set[int] = set()
        self._queue_known = False

    # -- names --------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return str(self.queue.name)

    @property
    def dlq_name(self) -> str:
        return f"{self.queue.name}.dlq"

    @property
    def retry_name(self) -> str:
        return f"{self.queue.name}.retry"

    def _arguments(self) -> dict[str, dict[str, Any]]:
        return {
            self.dlq_name: {},
            self.retry_name: {
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": self.name,
            },
            self.name: {
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": self.dlq_name,
            },
        }

    # -- producer side ------------------------------------------------------------------------

    def provision(self) -> None:
        """Declare the three queues. Declaring an existing queue with the same arguments is a
        no-op; with different ones RabbitMQ refuses (BadConfiguration): delete it first."""
        with self._errors(), self._channel() as channel:
            for name, arguments in self._arguments().items():
                channel.queue_declare(
                    queue=name, durable=True, auto_delete=False, arguments=arguments
                )
        self._queue_known = True

    def check(self) -> CheckResult:
        try:
            self._declare_passive(self.name)
        except QueueMissing:
            return CheckResult(True, "connected; the queue does not exist yet", provisioned=False)
        return CheckResult(True, "connected", provisioned=True)

    def message_size(self, message: OutgoingMessage) -> int:
        headers = sum(len(k.encode()) + len(v.encode()) for k, v in message.headers.items())
        return len(message.body_bytes()) + headers

    def publish(self, messages: Sequence[OutgoingMessage]) -> list[PublishResult]:
        self.check_sizes(messages)
        if not self._queue_known:
            self._declare_passive(self.name)
            self._queue_known = True
        for message in messages:
            self._publish(
                self.name,
                message.body_bytes(),
                message_id=message.message_id,
                headers=dict(message.headers),
                content_type=JSON if message.is_json else BINARY,
                ordering_key=message.ordering_key,
            )
        return [BrokerIdPublishResult(m.message_id, m.message_id) for m in messages]

    def stats(self) -> QueueStats:
        """depth: ready messages; RabbitMQ's AMQP side does not report unacknowledged ones."""
        main = self._declare_passive(self.name)
        dead = self._declare_passive(self.dlq_name)
        return QueueStats(
            depth=main.message_count,
            in_flight=None,
            dead_letters=dead.message_count,
            consumers=main.consumer_count,
        )

    # -- consumer side ------------------------------------------------------------------------

    def fetch(self, max_messages: int = 10, wait_seconds: float = 1.0) -> list[Delivery]:
        max_messages = max(1, max_messages)
        with self._errors():
            connection = self._ensure_consumer(max_messages)
            deadline = time.monotonic() + max(0.0, wait_seconds)
            while len(self._buffer) < max_messages:
                remaining = deadline - time.monotonic()
                if self._buffer or remaining <= 0:
                    # Take what already arrived, without waiting for more (a message every
                    # 10 ms would otherwise keep a 10 ms wait going).
                    remaining = 0.001
                before = len(self._buffer)
                with contextlib.suppress(TimeoutError):
                    connection.drain_events(timeout=remaining)
                if len(self._buffer) == before and (self._buffer or time.monotonic() >= deadline):
                    break
        taken, self._buffer = self._buffer[:max_messages], self._buffer[max_messages:]
        return [self._delivery(m) for m in taken]

    def ack(self, delivery: Delivery) -> None:
        handle = self._handle(delivery)
        with self._settling(delivery):
            handle.message.ack()
        self._unsettled.discard(handle.message.delivery_tag)

    def ack_many(self, deliveries: Sequence[Delivery]) -> list[QueueError | None]:
        """One ``basic.ack`` with ``multiple`` for the oldest unsettled tags when all of them
        are in ``deliveries`` (handlers finish in about the order they started), one each for
        the rest. Acks are not confirmed by RabbitMQ, so none of this waits."""
        results: list[QueueError | None] = [None] * len(deliveries)
        by_tag: dict[int, int] = {}
        for index, delivery in enumerate(deliveries):
            handle = self._handle(delivery)
            try:
                self._check_generation(delivery, handle)
            except LeaseLost as exc:
                results[index] = exc
                continue
            by_tag[handle.message.delivery_tag] = index
        if not by_tag:
            return results
        channel: Any = self._consumer.channel if self._consumer is not None else None
        last = 0
        for tag in sorted(self._unsettled):
            if tag not in by_tag:
                break
            last = tag
        try:
            if channel is None:
                raise OSError("the consumer channel is closed")
            if last:
                channel.basic_ack(last, multiple=True)
            for tag in by_tag:
                if tag > last:
                    channel.basic_ack(tag)
        except (OSError, amqp.exceptions.AMQPError, OperationalError) as exc:
            self._reset()
            for index in by_tag.values():
                results[index] = LeaseLost(
                    f"Message {deliveries[index].message_id} could not be settled ({exc}); "
                    "RabbitMQ delivers it again."
                )
            return results
        self._unsettled.difference_update(by_tag)
        return results

    def retry_later(self, delivery: Delivery, delay_seconds: float) -> None:
        handle = self._handle(delivery)
        self._check_generation(delivery, handle)
        self._publish(
            self.retry_name,
            delivery.body,
            message_id=delivery.message_id,
            headers={**delivery.headers, HEADER_ATTEMPT: str(delivery.attempt + 1)},
            content_type=handle.message.content_type or BINARY,
            ordering_key=delivery.ordering_key,
            expiration=max(0.0, delay_seconds),
        )
        self.ack(delivery)

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        handle = self._handle(delivery)
        self._check_generation(delivery, handle)
        self._publish(
            self.dlq_name,
            delivery.body,
            message_id=delivery.message_id,
            headers={
                **delivery.headers,
                HEADER_ATTEMPT: str(delivery.attempt),
                HEADER_REASON: reason[:MAX_REASON],
            },
            content_type=handle.message.content_type or BINARY,
            ordering_key=delivery.ordering_key,
        )
        self.ack(delivery)

    # -- administration (rabbitmq_dead_letters.py: basic.get, then requeue or ack) ----------

    def dead_letters(self, limit: int = 50, keys: Iterable[str] | None = None) -> list[DeadLetter]:
        return RabbitDeadLetters(self).peek(limit, keys)

    def redrive(self, message_ids: Iterable[str] | None = None) -> int:
        return RabbitDeadLetters(self).redrive(message_ids)

    def delete_dead_letter(self, message_id: str) -> bool:
        return RabbitDeadLetters(self).delete(message_id)

    def purge(self) -> int:
        """queue.purge of the queue and its retry queue: the ready messages, counted."""
        return RabbitDeadLetters(self).purge()

    def close(self) -> None:
        """Close the connection: unacknowledged deliveries go back to their queue."""
        self._reset()

    # -- connection ---------------------------------------------------------------------------

    def _connect(self) -> kombu.Connection:
        if self._connection is None:
            url = self.queue.connection_url
            parts = urlsplit(url)
            netloc = parts.hostname or ""
            if ":" in netloc:
                netloc = f"[{netloc}]"
            if parts.port:
                netloc += f":{parts.port}"
            bare = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
            connection = kombu.Connection(
                bare,
                userid=self.queue.username or unquote(parts.username or "") or None,
                password=self.queue.get_secret() or unquote(parts.password or "") or None,
                ssl=parts.scheme == "amqps",
                connect_timeout=self.connect_timeout,
                heartbeat=0,
                transport_options={
                    "confirm_publish": True,
                    # Bounds every blocking socket operation (declares, confirms, acks).
                    "read_timeout": self.confirm_timeout,
                    "write_timeout": self.confirm_timeout,
                },
            )
            connection.ensure_connection(
                max_retries=1, interval_start=0, interval_step=0.5, interval_max=0.5
            )
            self._connection = connection
            self._generation += 1
        return self._connection

    @contextlib.contextmanager
    def _channel(self) -> Iterator[Any]:
        """A short-lived channel: a channel error (404 on a passive declare, 406 on a
        mismatched one) closes only it."""
        channel = self._connect().channel()
        try:
            yield channel
        finally:
            with contextlib.suppress(Exception):
                if channel.is_open:
                    channel.close()

    def _declare_passive(self, name: str) -> Any:
        with self._errors(), self._channel() as channel:
            return channel.queue_declare(queue=name, passive=True)

    def _publish(
        self,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        headers: dict[str, str],
        content_type: str,
        ordering_key: str | None,
        expiration: float | None = None,
    ) -> None:
        if ordering_key:
            headers = {**headers, "quaymaster-ordering-key": ordering_key}
        with self._errors(publishing=True):
            producer = self._get_producer()
            self._returned.clear()
            producer.publish(
                body,
                routing_key=routing_key,
                exchange="",
                delivery_mode=2,
                mandatory=True,
                content_type=content_type,
                content_encoding="utf-8" if content_type == JSON else "binary",
                headers={HEADER_MESSAGE_ID: message_id, **headers},
                message_id=message_id,
                expiration=expiration,
                retry=False,
                declare=[],
                timeout=self.confirm_timeout,
                confirm_timeout=self.confirm_timeout,
            )
            if self._returned:
                self._queue_known = False
                raise QueueMissing(
                    f"RabbitMQ returned the message: no queue {routing_key!r} "
                    f"({self._returned[0]})."
                )

    def _get_producer(self) -> kombu.Producer:
        if self._producer is None:
            self._publish_channel = self._connect().channel()
            self._producer = kombu.Producer(
                self._publish_channel, on_return=self._on_return, auto_declare=False
            )
        return self._producer

    def _on_return(self, exception: Any, exchange: str, routing_key: str, message: Any) -> None:
        self._returned.append(str(exception))

    def _ensure_consumer(self, max_messages: int) -> kombu.Connection:
        connection = self._connect()
        if self._consumer is None:
            channel = connection.channel()
            consumer = kombu.Consumer(
                channel,
                queues=[kombu.Queue(self.name, no_declare=True)],
                # on_message, not callbacks: kombu would decode every body (JSON) first, on
                # the consumer thread, for a result nobody reads (handlers decode the bytes).
                on_message=self._on_message,
                no_ack=False,
                prefetch_count=max(self.prefetch, max_messages),
                auto_declare=False,
            )
            consumer.consume()
            self._consumer = consumer
        return connection

    def _on_message(self, message: Any) -> None:
        self._buffer.append(message)
        self._unsettled.add(message.delivery_tag)

    def _delivery(self, message: Any) -> Delivery:
        headers = dict(message.headers or {})
        attempt = int(headers.get(HEADER_ATTEMPT, 1) or 1)
        if message.delivery_info.get("redelivered"):
            attempt += 1
        ordering_key = headers.get("quaymaster-ordering-key")
        return Delivery(
            message_id=message.properties.get("message_id")
            or str(headers.get(HEADER_MESSAGE_ID, "")),
            body=message.body if isinstance(message.body, bytes) else str(message.body).encode(),
            attempt=attempt,
            headers={
                k: v
                for k, v in headers.items()
                if isinstance(v, str) and not k.startswith((HEADER_PREFIX, "x-"))
            },
            handle=RabbitHandle(message, self._generation),
            ordering_key=str(ordering_key) if ordering_key else None,
        )

    def _handle(self, delivery: Delivery) -> RabbitHandle:
        if not isinstance(delivery.handle, RabbitHandle):
            raise TypeError("This delivery was not fetched by a RabbitMQ backend.")
        return delivery.handle

    def _check_generation(self, delivery: Delivery, handle: RabbitHandle) -> None:
        if handle.generation != self._generation or self._connection is None:
            raise LeaseLost(
                f"Message {delivery.message_id}: its connection closed since the fetch; "
                "RabbitMQ delivers it again."
            )

    @contextlib.contextmanager
    def _settling(self, delivery: Delivery) -> Iterator[None]:
        handle = self._handle(delivery)
        self._check_generation(delivery, handle)
        try:
            yield
        except (OSError, amqp.exceptions.AMQPError, OperationalError) as exc:
            self._reset()
            raise LeaseLost(
                f"Message {delivery.message_id} could not be settled ({exc}); RabbitMQ delivers "
                "it again."
            ) from exc

    def _reset(self) -> None:
        connection, self._connection = self._connection, None
        self._consumer = None
        self._producer = None
        self._publish_channel = None
        self._buffer = []
        self._unsettled = set()
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()

    @contextlib.contextmanager
    def _errors(self, publishing: bool = False) -> Iterator[None]:
        try:
            yield
        except QueueError:
            raise
        except amqp.exceptions.NotFound as exc:
            self._drop_channels()
            raise QueueMissing(f"RabbitMQ: {exc.reply_text or exc} (provision the queue).") from exc
        except amqp.exceptions.PreconditionFailed as exc:
            self._drop_channels()
            raise BadConfiguration(
                f"RabbitMQ refused the queue's arguments: {exc.reply_text or exc}."
            ) from exc
        except amqp.exceptions.AccessRefused as exc:
            self._reset()
            raise BadConfiguration(f"RabbitMQ refused access: {exc.reply_text or exc}.") from exc
        except amqp.exceptions.MessageNacked as exc:
            self._drop_channels()
            raise BrokerUnavailable("RabbitMQ refused (nacked) a message.") from exc
        except OperationalError as exc:
            self._reset()
            cause = exc.__cause__
            if isinstance(cause, amqp.exceptions.AccessRefused) or "ACCESS_REFUSED" in str(exc):
                raise BadConfiguration(f"RabbitMQ refused the credentials: {exc}") from exc
            raise BrokerUnavailable(f"RabbitMQ at {self._where()} is unreachable: {exc}") from exc
        except (TimeoutError, OSError, amqp.exceptions.AMQPError) as exc:
            self._reset()
            raise BrokerUnavailable(f"RabbitMQ at {self._where()} failed: {exc!r}") from exc

    def _drop_channels(self) -> None:
        """After a channel error the publish channel may be closed; open a new one next time."""
        self._producer = None
        if self._publish_channel is not None:
            with contextlib.suppress(Exception):
                self._publish_channel.close()
        self._publish_channel = None

    def _where(self) -> str:
        url = self.queue.url or "AMQP_URL"
        return url
