"""The RabbitMQ consumer side: a consumer with prefetch (``basic.qos``) on the queue, messages
buffered as RabbitMQ pushes them, ``drain_events(timeout)`` while waiting.

There is no visibility timeout: an unacknowledged message returns to the queue when the
channel closes (the consumer crashed or closed), or after RabbitMQ's ``consumer_timeout``.
Attempts: the ``quaymaster-attempt`` header, set by ``retry_later``; a redelivery after a
crash adds one (``redelivered`` flag), but classic queues do not count repeated crashes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import kombu

from queues.backends.rabbitmq.client import HEADER_ORDERING_KEY, SOCKET_ERRORS, RabbitClient
from queues.errors import LeaseLost, QueueError
from queues.messages import HEADER_ATTEMPT, HEADER_MESSAGE_ID, Delivery


@dataclass(frozen=True)
class RabbitHandle:
    message: Any  # kombu.Message
    generation: int  # the connection it came on: acks on a later connection are void


class RabbitConsumer:
    """Consumes ``queue_name``; ``user_headers`` turns AMQP headers into the message's own."""

    def __init__(
        self,
        client: RabbitClient,
        queue_name: str,
        user_headers: Callable[[Mapping[str, Any]], dict[str, str]],
    ) -> None:
        self.client = client
        self.queue_name = queue_name
        self.user_headers = user_headers
        self._consumer: kombu.Consumer | None = None
        self._buffer: list[Any] = []
        #: Delivery tags received on the consumer channel and not settled yet (buffered ones
        #: included): ``ack_many`` acknowledges the oldest run of them with one multiple ack.
        self._unsettled: set[int] = set()
        client.on_reset(self._forget)

    def fetch(self, max_messages: int, wait_seconds: float, prefetch: int) -> list[Delivery]:
        max_messages = max(1, max_messages)
        with self.client.errors():
            connection = self._ensure_consumer(max(prefetch, max_messages))
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

    def ack(self, delivery: Delivery, handle: RabbitHandle) -> None:
        with self._settling(delivery, handle):
            handle.message.ack()
        self._unsettled.discard(handle.message.delivery_tag)

    def ack_many(
        self, deliveries: Sequence[Delivery], handles: Sequence[RabbitHandle]
    ) -> list[QueueError | None]:
        """One ``basic.ack`` with ``multiple`` for the oldest unsettled tags when all of them
        are in ``deliveries`` (handlers finish in about the order they started), one each for
        the rest. Acks are not confirmed by RabbitMQ, so none of this waits."""
        results: list[QueueError | None] = [None] * len(deliveries)
        by_tag: dict[int, int] = {}
        for index, (delivery, handle) in enumerate(zip(deliveries, handles, strict=True)):
            try:
                self.check_generation(delivery, handle)
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
        except SOCKET_ERRORS as exc:
            self.client.reset()
            for index in by_tag.values():
                results[index] = LeaseLost(
                    f"Message {deliveries[index].message_id} could not be settled ({exc}); "
                    "RabbitMQ delivers it again."
                )
            return results
        self._unsettled.difference_update(by_tag)
        return results

    def check_generation(self, delivery: Delivery, handle: RabbitHandle) -> None:
        """Raise ``LeaseLost`` when the delivery's connection closed since the fetch."""
        if handle.generation != self.client.generation or not self.client.connected:
            raise LeaseLost(
                f"Message {delivery.message_id}: its connection closed since the fetch; "
                "RabbitMQ delivers it again."
            )

    # -- internals ----------------------------------------------------------------------------

    def _ensure_consumer(self, prefetch: int) -> kombu.Connection:
        connection = self.client.connect()
        if self._consumer is None:
            channel = connection.channel()
            consumer = kombu.Consumer(
                channel,
                queues=[kombu.Queue(self.queue_name, no_declare=True)],
                # on_message, not callbacks: kombu would decode every body (JSON) first, on
                # the consumer thread, for a result nobody reads (handlers decode the bytes).
                on_message=self._on_message,
                no_ack=False,
                prefetch_count=prefetch,
                auto_declare=False,
            )
            consumer.consume()
            self._consumer = consumer
        return connection

    def _on_message(self, message: Any) -> None:
        self._buffer.append(message)
        self._unsettled.add(message.delivery_tag)

    def _forget(self) -> None:
        self._consumer = None
        self._buffer = []
        self._unsettled = set()

    def _delivery(self, message: Any) -> Delivery:
        headers = dict(message.headers or {})
        attempt = int(headers.get(HEADER_ATTEMPT, 1) or 1)
        if message.delivery_info.get("redelivered"):
            attempt += 1
        ordering_key = headers.get(HEADER_ORDERING_KEY)
        return Delivery(
            message_id=message.properties.get("message_id")
            or str(headers.get(HEADER_MESSAGE_ID, "")),
            body=message.body if isinstance(message.body, bytes) else str(message.body).encode(),
            attempt=attempt,
            headers=self.user_headers(headers),
            handle=RabbitHandle(message, self.client.generation),
            ordering_key=str(ordering_key) if ordering_key else None,
        )

    @contextlib.contextmanager
    def _settling(self, delivery: Delivery, handle: RabbitHandle) -> Iterator[None]:
        self.check_generation(delivery, handle)
        try:
            yield
        except SOCKET_ERRORS as exc:
            self.client.reset()
            raise LeaseLost(
                f"Message {delivery.message_id} could not be settled ({exc}); RabbitMQ delivers "
                "it again."
            ) from exc
