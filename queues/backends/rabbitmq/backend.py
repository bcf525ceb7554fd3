"""``RabbitMqBackend``: a queue, its retry queue and its DLQ behind the backend interface (the
package's docstring states the semantics)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import amqp.exceptions

from queues.backends.base import (
    MIB,
    AddError,
    Backend,
    PrioritySupport,
    QueueConfig,
    split_url,
)
from queues.backends.rabbitmq.client import BINARY, JSON, Names, RabbitClient
from queues.backends.rabbitmq.consumer import RabbitConsumer, RabbitHandle
from queues.backends.rabbitmq.dead_letters import RabbitDeadLetters
from queues.errors import BadConfiguration, PublishFailed, QueueError, QueueMissing
from queues.messages import (
    BrokerIdPublishResult,
    CheckResult,
    Delivery,
    OutgoingMessage,
    PublishResult,
    QueueStats,
)
from queues.models import RABBITMQ_MAX_PRIORITY


class RabbitMqBackend(Backend):
    engine = "RabbitMQ"
    max_message_bytes = 16 * MIB
    releases_on_close = True
    foreign_headers = ("x-",)  # RabbitMQ's own (x-death, x-first-death-*)
    handle_type = RabbitHandle
    queue_options = frozenset({"max_priority"})
    url_setting = "AMQP_URL"
    url_required = True
    connect_timeout = 2.0
    #: Waiting for a publisher confirm (and any other socket operation).
    confirm_timeout = 10.0
    #: Unacknowledged messages the broker pushes ahead of fetch() (at least max_messages).
    prefetch = 10

    def __init__(self, queue: QueueConfig) -> None:
        super().__init__(queue)
        self.names = Names(str(queue.name))
        self._client: RabbitClient | None = None
        self._consumer: RabbitConsumer | None = None

    @classmethod
    def clean_queue(cls, queue: QueueConfig, add: AddError) -> None:
        if not 0 <= queue.max_priority <= RABBITMQ_MAX_PRIORITY:
            add(
                "max_priority",
                f"RabbitMQ recommends at most {RABBITMQ_MAX_PRIORITY} priorities (0: none).",
            )
        if (queue.name or "").startswith("amq."):
            add("name", "RabbitMQ reserves queue names starting with 'amq.'.")
        if queue.url:
            parts = split_url(queue.url)
            if parts is None or parts.scheme not in ("amqp", "amqps") or not parts.hostname:
                add("url", "An AMQP URL starts with amqp:// or amqps:// and names a host.")
            elif parts.username or parts.password:
                add("url", "Put the user name and password in their fields, not in the URL.")
        if queue.has_secret and not queue.username:
            add("username", "A password needs a user name.")

    @classmethod
    def priority_support(cls, queue: QueueConfig) -> PrioritySupport:
        if queue.max_priority:
            return PrioritySupport(
                True,
                f"RabbitMQ delivers higher priorities first (x-max-priority {queue.max_priority}; "
                "messages a worker has prefetched keep their place).",
            )
        return PrioritySupport(
            False,
            "This RabbitMQ queue was declared without x-max-priority: RabbitMQ ignores the "
            "priority (a priority queue takes a new queue with a max priority).",
        )

    def prepare(self, concurrency: int) -> None:
        # basic.qos: RabbitMQ pushes at most twice as many unacknowledged messages as we can
        # run. The extra N wait in the consumer's buffer (not fetched, so not started), so a
        # freed thread gets its next message without an ack-to-delivery round trip; with
        # qos = N the threads idled through that round trip (1.3k against 2.3k msg/s here).
        self.prefetch = concurrency * 2

    # -- names and parts ----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.names.name

    @property
    def dlq_name(self) -> str:
        return self.names.dlq

    @property
    def retry_name(self) -> str:
        return self.names.retry

    @property
    def client(self) -> RabbitClient:
        """The queue's connection, made on first use (so a timeout shortened after
        construction, as ``services.live_stats`` does, still applies)."""
        if self._client is None:
            self._client = RabbitClient(self.queue, self.connect_timeout, self.confirm_timeout)
        return self._client

    @property
    def consumer(self) -> RabbitConsumer:
        if self._consumer is None:
            self._consumer = RabbitConsumer(self.client, self.name, self.user_headers)
        return self._consumer

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
                **({"x-max-priority": self.queue.max_priority} if self.queue.max_priority else {}),
            },
        }

    # -- producer side ------------------------------------------------------------------------

    def provision(self) -> None:
        """Declare the three queues. Declaring an existing queue with the same arguments is a
        no-op; with different ones (``x-max-priority`` added or changed, say) RabbitMQ answers
        PRECONDITION_FAILED, raised as ``BadConfiguration``: a queue's arguments never change,
        so delete it on RabbitMQ first (its messages with it) or use a new queue."""
        with self.client.errors(), self.client.channel() as channel:
            for name, arguments in self._arguments().items():
                try:
                    channel.queue_declare(
                        queue=name, durable=True, auto_delete=False, arguments=arguments
                    )
                except amqp.exceptions.PreconditionFailed as exc:
                    raise BadConfiguration(
                        f"RabbitMQ already has a queue {name!r} declared with other arguments "
                        f"({exc.reply_text or exc}). RabbitMQ never changes an existing queue's "
                        "arguments (x-max-priority included): delete that queue on RabbitMQ "
                        "(its messages go with it), or create a new queue."
                    ) from exc
        self.client.queue_known = True

    def check(self) -> CheckResult:
        try:
            self.client.declare_passive(self.name)
        except QueueMissing:
            return CheckResult(True, "connected; the queue does not exist yet", provisioned=False)
        return CheckResult(True, "connected", provisioned=True)

    def message_size(self, message: OutgoingMessage) -> int:
        headers = sum(len(k.encode()) + len(v.encode()) for k, v in message.headers.items())
        return len(message.body_bytes()) + headers

    def publish(self, messages: Sequence[OutgoingMessage]) -> list[PublishResult]:
        """The whole batch, then its confirms (``confirms.py``). Only what RabbitMQ confirmed
        is published: when some messages are refused, returned or unconfirmed in time,
        ``PublishFailed`` names them and carries the confirmed ones; when none is confirmed,
        the cause is raised (``BrokerUnavailable``, ``QueueMissing``)."""
        self.check_sizes(messages)
        client = self.client
        if not client.queue_known:
            client.declare_passive(self.name)
            client.queue_known = True
        outcomes = client.publish_batch(
            self.name,
            [
                client.outgoing(
                    message.body_bytes(),
                    message_id=message.message_id,
                    headers=dict(message.headers),
                    content_type=JSON if message.is_json else BINARY,
                    ordering_key=message.ordering_key,
                    priority=message.priority,
                )
                for message in messages
            ],
        )
        results: list[PublishResult] = [
            BrokerIdPublishResult(m.message_id, m.message_id) for m in messages
        ]
        if not any(outcomes):
            return results
        if all(outcomes):
            raise client.refusal(self.name, outcomes)
        raise PublishFailed(
            [result for result, why in zip(results, outcomes, strict=True) if not why],
            {m.message_id: why for m, why in zip(messages, outcomes, strict=True) if why},
        )

    def stats(self) -> QueueStats:
        """depth: ready messages; RabbitMQ's AMQP side does not report unacknowledged ones."""
        main = self.client.declare_passive(self.name)
        dead = self.client.declare_passive(self.dlq_name)
        return QueueStats(
            depth=main.message_count,
            in_flight=None,
            dead_letters=dead.message_count,
            consumers=main.consumer_count,
        )

    # -- consumer side ------------------------------------------------------------------------

    def fetch(self, max_messages: int = 10, wait_seconds: float = 1.0) -> list[Delivery]:
        return self.consumer.fetch(max_messages, wait_seconds, self.prefetch)

    def ack(self, delivery: Delivery) -> None:
        self.consumer.ack(delivery, self.handle(delivery))

    def ack_many(self, deliveries: Sequence[Delivery]) -> list[QueueError | None]:
        return self.consumer.ack_many(deliveries, [self.handle(d) for d in deliveries])

    def retry_later(self, delivery: Delivery, delay_seconds: float) -> None:
        """A copy on ``<name>.retry`` expiring after the delay (dead-lettered back to
        ``<name>``), with the next attempt number; then ack."""
        self.forward(
            delivery,
            self.retry_name,
            self.retry_headers(delivery, delay_seconds),
            max(0.0, delay_seconds),
        )

    @property
    def dead_letter_destination(self) -> str:
        """A copy with the reason (rejecting the original would lose the reason)."""
        return self.dlq_name

    def publish_copy(
        self,
        delivery: Delivery,
        destination: str,
        headers: Mapping[str, str],
        delay_seconds: float | None = None,
    ) -> None:
        handle: RabbitHandle = self.handle(delivery)
        self.consumer.check_generation(delivery, handle)
        self.client.publish(
            destination,
            delivery.body,
            message_id=delivery.message_id,
            headers=dict(headers),
            content_type=handle.message.content_type or BINARY,
            ordering_key=delivery.ordering_key,
            expiration=delay_seconds,
            priority=handle.message.properties.get("priority"),
        )

    # -- administration (dead_letters.py: basic.get, then requeue or ack) --------------------

    def dead_letter_store(self) -> RabbitDeadLetters:
        return RabbitDeadLetters(self.client, self.names, self.user_headers)

    def purge(self) -> int:
        """queue.purge of the queue and its retry queue: the ready messages, counted."""
        return self.dead_letter_store().purge()

    def close(self) -> None:
        """Close the connection: unacknowledged deliveries go back to their queue."""
        if self._client is not None:
            self._client.reset()
