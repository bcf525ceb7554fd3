"""The Kafka producer side: an idempotent producer (``enable.idempotence``, ``acks=all``), the
ordering key as the record key (``murmur2_random``, the Java client's partitioner), our message
id in the ``quaymaster-message-id`` header, and every delivery report checked.

A failed batch raises ``BrokerUnavailable``, and some of its messages may already be written:
publishing is at least once, which the outbox tolerates (it sends the whole batch again).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from queues.backends.kafka.client import KafkaClient
from queues.errors import BrokerUnavailable, MessageTooLarge, QueueMissing
from queues.messages import HEADER_MESSAGE_ID, KafkaPublishResult, OutgoingMessage

HEADER_OVERHEAD = 8  # per header, the varints around name and value, counted generously

Headers = list[tuple[str, str | bytes | None]]
OnDelivery = Any  # (error, message) -> None, called from flush()/poll()


def record_headers(message_id: str, headers: Mapping[str, str]) -> Headers:
    """Our message id first, then the message's own headers."""
    return [(HEADER_MESSAGE_ID, message_id), *headers.items()]


def envelope_size(message: OutgoingMessage) -> int:
    """What the record key and headers add to the value's size."""
    key = (message.ordering_key or "").encode()
    headers = sum(
        len(name.encode()) + len(value.encode()) + HEADER_OVERHEAD
        for name, value in [(HEADER_MESSAGE_ID, message.message_id), *message.headers.items()]
    )
    return len(key) + headers


class KafkaProducer:
    """Produces a queue's records; ``engine`` and ``max_message_bytes`` name the size error."""

    def __init__(
        self, client: KafkaClient, delivery_timeout: float, max_message_bytes: int
    ) -> None:
        self.client = client
        self.delivery_timeout = delivery_timeout
        self.max_message_bytes = max_message_bytes
        self._producer: Producer | None = None
        self._topic_known = False

    @property
    def producer(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(
                self.client.config(
                    **{
                        "enable.idempotence": True,
                        "acks": "all",
                        "linger.ms": 2,
                        "partitioner": "murmur2_random",
                        "message.timeout.ms": int(self.delivery_timeout * 1000),
                        "allow.auto.create.topics": False,
                    }
                )
            )
        return self._producer

    def publish(
        self, messages: Sequence[OutgoingMessage], values: Sequence[bytes]
    ) -> list[KafkaPublishResult]:
        """Produce every message (its encoded value in ``values``), then one flush."""
        topic = self.client.names.topic
        producer = self.producer
        self._ensure_topic(producer)
        reports: dict[int, tuple[KafkaError | None, Any]] = {}
        for index, message in enumerate(messages):
            self.produce(
                message.message_id,
                topic,
                values[index],
                message.ordering_key,
                record_headers(message.message_id, message.headers),
                lambda err, msg, i=index: reports.__setitem__(i, (err, msg)),
            )
        remaining = producer.flush(self.delivery_timeout + 5)
        failures = [
            f"{messages[i].message_id}: {err}" for i, (err, _) in sorted(reports.items()) if err
        ]
        if remaining or failures or len(reports) < len(messages):
            self._topic_known = False  # look again (and fail fast) next time
            raise BrokerUnavailable(
                f"Kafka did not acknowledge {len(messages) - len(reports) + len(failures)} of "
                f"{len(messages)} message(s) on {topic!r} (some may have been written): "
                + "; ".join(failures[:5])
            )
        self.client.brokers_down = False
        return [
            KafkaPublishResult(
                message.message_id, reports[i][1].partition(), reports[i][1].offset()
            )
            for i, message in enumerate(messages)
        ]

    def produce(
        self,
        message_id: str,
        topic: str,
        value: bytes,
        key: str | None,
        headers: Headers,
        on_delivery: OnDelivery,
    ) -> None:
        """Hand one record to librdkafka (its report comes through ``on_delivery``)."""
        producer = self.producer
        for _ in range(2):
            try:
                producer.produce(
                    topic,
                    value=value,
                    key=key.encode() if key else None,
                    headers=headers,
                    on_delivery=on_delivery,
                )
                return
            except BufferError:  # the local queue is full: let it drain, then once more
                producer.flush(self.delivery_timeout)
            except KafkaException as exc:
                if exc.args[0].code() == KafkaError.MSG_SIZE_TOO_LARGE:
                    raise MessageTooLarge(
                        message_id, len(value), self.max_message_bytes, "Kafka"
                    ) from exc
                raise self.client.translate(exc, "producing") from exc
        raise BrokerUnavailable("Kafka producer queue stayed full.")

    def produce_now(
        self, topic: str, message_id: str, value: bytes, key: str | None, headers: Headers
    ) -> None:
        """Produce one record and wait for its delivery report."""
        reports: list[KafkaError | None] = []
        self.produce(message_id, topic, value, key, headers, lambda err, msg: reports.append(err))
        self.flush()
        if not reports or reports[0] is not None:
            raise BrokerUnavailable(
                f"Kafka did not acknowledge message {message_id} on {topic!r}: "
                f"{reports[0] if reports else 'timed out'}"
            )

    def flush(self) -> None:
        self.producer.flush(self.delivery_timeout + 5)

    def close(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            producer.flush(1)  # publish() flushed already: nothing should be left
            with contextlib.suppress(KafkaException, RuntimeError):
                producer.close()

    def _ensure_topic(self, producer: Producer) -> None:
        if self._topic_known and not self.client.brokers_down:
            return
        topic_name = self.client.names.topic
        try:
            metadata = producer.list_topics(topic=topic_name, timeout=self.client.connect_timeout)
        except KafkaException as exc:
            raise self.client.translate(exc, "reading metadata") from exc
        topic = metadata.topics.get(topic_name)
        if topic is None or topic.error is not None:
            raise QueueMissing(f"Kafka topic {topic_name!r} does not exist: provision the queue.")
        self._topic_known = True
        self.client.brokers_down = False
