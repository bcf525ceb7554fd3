"""``KafkaBackend``: one queue's topics behind the backend interface (the package's docstring
states the semantics). It composes the package's parts, each made on first use so that a
timeout shortened after construction (``services.live_stats``) still applies."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from queues.backends.base import AddError, Backend, PrioritySupport, QueueConfig
from queues.backends.kafka.admin import KafkaAdmin
from queues.backends.kafka.client import KafkaClient, Names, base_config
from queues.backends.kafka.consumer import KafkaConsumer
from queues.backends.kafka.dead_letters import HEADER_ORIGIN, KafkaDeadLetters
from queues.backends.kafka.offsets import KafkaHandle
from queues.backends.kafka.producer import KafkaProducer, envelope_size, record_headers
from queues.errors import QueueError
from queues.messages import (
    HEADER_NOT_BEFORE,
    CheckResult,
    Delivery,
    OutgoingMessage,
    PublishResult,
    QueueStats,
)
from queues.models import KAFKA_MAX_PARTITIONS

# Bootstrap servers: host:port[,host:port...]; IPv6 hosts in brackets.
_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?):\d{1,5}$")


class KafkaBackend(Backend):
    engine = "Kafka"
    max_message_bytes = 999_000
    releases_on_close = True
    serialise_admin = True
    handle_type = KafkaHandle
    queue_options = frozenset({"partitions"})
    url_setting = "KAFKA_BOOTSTRAP_SERVERS"
    url_required = True
    #: Metadata and admin requests (connection check, topic existence).
    connect_timeout = 2.0
    #: A produced message not acknowledged by the brokers within this fails the publish.
    delivery_timeout = 10.0
    #: Each consume() slice while waiting, so a fetch returns soon after messages arrive.
    poll_slice = 0.1
    #: An asynchronous commit unanswered for this long no longer holds back the next one.
    commit_timeout = 10.0

    def __init__(self, queue: QueueConfig) -> None:
        super().__init__(queue)
        self.names = Names.of(str(queue.name))
        self._client: KafkaClient | None = None
        self._producer: KafkaProducer | None = None
        self._consumer: KafkaConsumer | None = None
        self._admin: KafkaAdmin | None = None

    @classmethod
    def priority_support(cls, queue: QueueConfig) -> PrioritySupport:
        return PrioritySupport(
            False, "Kafka has no message priorities (a partition is read in offset order): ignored."
        )

    @classmethod
    def clean_queue(cls, queue: QueueConfig, add: AddError) -> None:
        if queue.partitions is None:
            queue.partitions = queue.effective_partitions
        if not 1 <= queue.partitions <= KAFKA_MAX_PARTITIONS:
            add("partitions", f"Kafka topics have 1 to {KAFKA_MAX_PARTITIONS} partitions here.")
        if queue.url:
            servers = [s.strip() for s in queue.url.split(",")]
            if not all(_HOST_PORT.match(s) for s in servers):
                add("url", "Kafka bootstrap servers are host:port, comma-separated.")
        if queue.has_secret and not queue.username:
            add("username", "A Kafka password needs a user name (SASL PLAIN).")

    # -- names and parts ------------------------------------------------------------------------

    @property
    def topic(self) -> str:
        return self.names.topic

    @property
    def retry_topic(self) -> str:
        return self.names.retry_topic

    @property
    def dlq_topic(self) -> str:
        return self.names.dlq_topic

    @property
    def group_id(self) -> str:
        return self.names.group_id

    def _config(self) -> dict[str, Any]:
        """The queue's librdkafka settings (every client adds its own to these)."""
        return base_config(self.queue, self.connect_timeout)

    @property
    def client(self) -> KafkaClient:
        if self._client is None:
            self._client = KafkaClient(self.queue, self._config(), self.connect_timeout)
        return self._client

    @property
    def producer(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = KafkaProducer(
                self.client, self.delivery_timeout, self.max_message_bytes
            )
        return self._producer

    @property
    def consumer(self) -> KafkaConsumer:
        if self._consumer is None:
            self._consumer = KafkaConsumer(
                self.client, self.poll_slice, self.commit_timeout, self.user_headers
            )
        return self._consumer

    @property
    def admin(self) -> KafkaAdmin:
        if self._admin is None:
            self._admin = KafkaAdmin(self.client)
        return self._admin

    def dead_letter_store(self) -> KafkaDeadLetters:
        return KafkaDeadLetters(self.client, self.producer, self.admin, self.user_headers)

    # -- producer side ------------------------------------------------------------------------

    def provision(self) -> None:
        self.admin.provision(self.queue.effective_partitions)

    def check(self) -> CheckResult:
        return self.admin.check()

    def message_size(self, message: OutgoingMessage) -> int:
        """Value + key + header names and values (librdkafka refuses records over 1,000,000
        bytes with ~100 of framing; the broker's default limit is 1,048,588)."""
        return len(message.body_bytes()) + envelope_size(message)

    def publish(self, messages: Sequence[OutgoingMessage]) -> list[PublishResult]:
        """Produce every message, then one flush; see the package docstring for failures."""
        values = [message.body_bytes() for message in messages]  # encoded once: sized and sent
        self.check_sizes(
            messages,
            [len(v) + envelope_size(m) for m, v in zip(messages, values, strict=True)],
        )
        return list(self.producer.publish(messages, values))

    def stats(self) -> QueueStats:
        """lag: per partition of the main and retry topics, the end offset minus the group's
        committed offset (the start of the log when nothing is committed). depth = lag."""
        return self.admin.stats()

    # -- consumer side ------------------------------------------------------------------------

    def fetch(self, max_messages: int = 10, wait_seconds: float = 1.0) -> list[Delivery]:
        return self.consumer.fetch(max_messages, wait_seconds)

    def ack(self, delivery: Delivery) -> None:
        self.consumer.ack(delivery, self.handle(delivery))

    def ack_many(self, deliveries: Sequence[Delivery]) -> list[QueueError | None]:
        return self.consumer.ack_many(deliveries, [self.handle(d) for d in deliveries])

    def retry_later(self, delivery: Delivery, delay_seconds: float) -> None:
        """A copy on ``<name>.retry`` with the next attempt and its not-before time, then ack."""
        self.forward(
            delivery, self.retry_topic, self.retry_headers(delivery, delay_seconds), delay_seconds
        )

    def retry_headers(self, delivery: Delivery, delay_seconds: float) -> dict[str, str]:
        not_before = int((time.time() + max(0.0, delay_seconds)) * 1000)
        return {
            **super().retry_headers(delivery, delay_seconds),
            HEADER_NOT_BEFORE: str(not_before),
        }

    @property
    def dead_letter_destination(self) -> str:
        return self.dlq_topic

    def dead_letter_headers(self, delivery: Delivery, reason: str) -> dict[str, str]:
        handle: KafkaHandle = self.handle(delivery)
        return {
            **super().dead_letter_headers(delivery, reason),
            HEADER_ORIGIN: f"{handle.topic}/{handle.partition}/{handle.offset}",
        }

    def publish_copy(
        self,
        delivery: Delivery,
        destination: str,
        headers: Mapping[str, str],
        delay_seconds: float | None = None,
    ) -> None:
        self.producer.produce_now(
            destination,
            delivery.message_id,
            delivery.body,
            delivery.ordering_key,
            record_headers(delivery.message_id, headers),
        )

    # -- administration (dead_letters.py: how a log keeps "removed" dead letters) -------------

    def purge(self) -> int:
        """DeleteRecords to the end of the topic and its retry topic; returns how many were
        waiting for the worker group."""
        return self.admin.purge()

    def settled_dead_letters(self) -> int:
        return self.dead_letter_store().settled_count()

    def close(self) -> None:
        """Leave the group (unacknowledged messages go to the next reader) and stop the
        clients' threads."""
        if self._consumer is not None:
            self._consumer.close()
        if self._admin is not None:
            self._admin.close()
        if self._producer is not None:
            self._producer.close()
