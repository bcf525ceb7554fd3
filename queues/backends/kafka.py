"""Apache Kafka through confluent-kafka (librdkafka), never kombu's Kafka transport.

* Topics: ``<name>`` (``partitions`` partitions), ``<name>.retry`` (same partitions) and
  ``<name>.dlq``, replication ``min(3, brokers)``. The consumer group is
  ``quaymaster.<name>`` and reads ``<name>`` and ``<name>.retry``.
* Publish: an idempotent producer (``enable.idempotence``, ``acks=all``), the ordering key as
  the record key (``murmur2_random``, the Java client's partitioner), our message id in the
  ``quaymaster-message-id`` header. Every delivery report is checked. A failed batch raises
  ``BrokerUnavailable``, and some of its messages may already be written: publishing is at
  least once, which the outbox tolerates (it sends the whole batch again).
* Size: librdkafka refuses records over ``message.max.bytes`` (1,000,000) including ~100 bytes
  of framing, and the broker's default limit is 1,048,588. We count value + key + header names
  and values and accept at most 999,000 bytes, checked for the whole batch before sending.
* Acks commit explicit offsets, never "everything fetched": per partition, the lowest offset
  still unacknowledged (or the last fetched + 1 when none is), so a crash never skips a message
  that was fetched but not acknowledged. Deliveries are at least once. ``ack`` commits
  synchronously (committed when it returns); ``ack_many``, which workers use, commits
  asynchronously with at most one commit in flight: positions acknowledged while one is in
  flight are merged and sent when its answer comes (served by the next ``fetch``). A failed
  commit is logged; a later commit or ``close`` (which commits the last positions
  synchronously) covers it; at worst messages are delivered again. (Pipelining a commit per
  batch made Kafka 4.1's group coordinator stall a request for the whole session timeout.)
* ``retry_later`` produces the message to ``<name>.retry`` with ``quaymaster-attempt`` + 1 and
  ``quaymaster-not-before`` (epoch ms), then acks the original. ``fetch`` holds a retry
  partition whose head is not due yet (pause + seek back) and resumes it when due. Retries
  with different delays share a partition, so a long delay holds back the shorter ones behind
  it (head-of-line), as with any single delay topic.
* ``dead_letter`` produces to ``<name>.dlq`` with ``quaymaster-dead-letter-reason`` (plus the
  origin topic, partition and offset), then acks.
* Kafka has no visibility timeout: a message fetched and never acknowledged is delivered again
  when its partition is re-read from the committed offset (consumer restart or rebalance), and
  the attempt number then restarts from the header (1 for a message never retried).
* ``username`` and the secret, when set, are SASL PLAIN over TLS (``SASL_SSL``).
* Administration lives in ``kafka_dead_letters.py``: how a log keeps which dead letters were
  sent back or deleted (the redrive group), purging.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from queues.backends.base import (
    HEADER_ATTEMPT,
    HEADER_MESSAGE_ID,
    HEADER_NOT_BEFORE,
    HEADER_PREFIX,
    HEADER_REASON,
    MAX_REASON,
    Backend,
    CheckResult,
    Delivery,
    KafkaPublishResult,
    OutgoingMessage,
    PublishResult,
    QueueStats,
)
from queues.backends.kafka_dead_letters import KafkaDeadLetters
from queues.backends.kafka_offsets import KafkaHandle, OffsetTracker, StaleAck
from queues.errors import (
    BadConfiguration,
    BrokerUnavailable,
    LeaseLost,
    MessageTooLarge,
    QueueError,
    QueueMissing,
)
from queues.messages import DeadLetter
from queues.models import Queue

logger = logging.getLogger(__name__)

HEADER_ORIGIN = "quaymaster-origin"  # topic/partition/offset of a dead letter's original
HEADER_OVERHEAD = 8  # per header, the varints around name and value, counted generously

_AUTH = {
    KafkaError._AUTHENTICATION,
    KafkaError.SASL_AUTHENTICATION_FAILED,
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.GROUP_AUTHORIZATION_FAILED,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED,
}
_MISSING = {
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._UNKNOWN_TOPIC,
    KafkaError._UNKNOWN_PARTITION,
}
_TRANSIENT = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError._WAIT_COORD,
}
_REBALANCED = {
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError._NO_OFFSET,
    KafkaError._STATE,
}


class KafkaBackend(Backend):
    engine = "Kafka"
    serialise_admin = True
    max_message_bytes = 999_000
    #: Metadata and admin requests (connection check, topic existence).
    connect_timeout = 2.0
    #: A produced message not acknowledged by the brokers within this fails the publish.
    delivery_timeout = 10.0
    #: Each consume() slice while waiting, so a fetch returns soon after messages arrive.
    poll_slice = 0.1
    #: An asynchronous commit unanswered for this long no longer holds back the next one.
    commit_timeout = 10.0

    def __init__(self, queue: Queue) -> None:
        super().__init__(queue)
        self._producer: Producer | None = None
        self._consumer: Consumer | None = None
        self._stats_consumer: Consumer | None = None
        self._topic_known = False
        self._brokers_down = False
        self._offsets = OffsetTracker()
        self._held: dict[tuple[str, int], float] = {}  # retry partitions paused until (epoch s)
        #: Positions acknowledged through ack_many: sent (asynchronously) or waiting to be.
        self._async_positions: dict[tuple[str, int], int] = {}
        self._unsent: dict[tuple[str, int], int] = {}
        self._commit_sent_at: float | None = None  # monotonic; None: no commit in flight

    # -- names --------------------------------------------------------------------------------

    @property
    def topic(self) -> str:
        return str(self.queue.name)

    @property
    def retry_topic(self) -> str:
        return f"{self.queue.name}.retry"

    @property
    def dlq_topic(self) -> str:
        return f"{self.queue.name}.dlq"

    @property
    def group_id(self) -> str:
        return f"quaymaster.{self.queue.name}"

    # -- producer side ------------------------------------------------------------------------

    def provision(self) -> None:
        """Create the missing topics. An existing topic is left as it is: Kafka cannot shrink a
        topic, and growing it would move keys to other partitions (and break their order)."""
        admin = AdminClient(self._config())
        metadata = self._metadata(admin)
        replication = max(1, min(3, len(metadata.brokers)))
        partitions = self.queue.effective_partitions
        wanted = [
            NewTopic(topic, num_partitions=partitions, replication_factor=replication)
            for topic in (self.topic, self.retry_topic, self.dlq_topic)
            if topic not in metadata.topics
        ]
        if not wanted:
            return
        futures = admin.create_topics(wanted, operation_timeout=self.connect_timeout * 5)
        for topic, future in futures.items():
            try:
                future.result(timeout=self.connect_timeout * 5)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise self._translate(exc, f"creating topic {topic!r}") from exc
        self._wait_for_topics(admin, [t.topic for t in wanted])

    def check(self) -> CheckResult:
        metadata = self._metadata(AdminClient(self._config()))
        exists = self.topic in metadata.topics and metadata.topics[self.topic].error is None
        detail = f"connected to {len(metadata.brokers)} broker(s)"
        return CheckResult(True, detail if exists else f"{detail}; topic missing", exists)

    def message_size(self, message: OutgoingMessage) -> int:
        return len(message.body_bytes()) + self._envelope_size(message)

    @staticmethod
    def _envelope_size(message: OutgoingMessage) -> int:
        """The key and headers' share of ``message_size``."""
        key = (message.ordering_key or "").encode()
        headers = sum(
            len(name.encode()) + len(value.encode()) + HEADER_OVERHEAD
            for name, value in [(HEADER_MESSAGE_ID, message.message_id), *message.headers.items()]
        )
        return len(key) + headers

    def publish(self, messages: Sequence[OutgoingMessage]) -> list[PublishResult]:
        """Produce every message, then one flush; see the module docstring for failures."""
        values = [message.body_bytes() for message in messages]  # encoded once: sized and sent
        for message, value in zip(messages, values, strict=True):
            size = len(value) + self._envelope_size(message)
            if size > self.max_message_bytes:
                raise MessageTooLarge(message.message_id, size, self.max_message_bytes, self.engine)
        producer = self.producer
        self._ensure_topic(producer)
        reports: dict[int, tuple[KafkaError | None, Any]] = {}
        for index, message in enumerate(messages):
            self._produce(
                producer,
                message.message_id,
                self.topic,
                values[index],
                message.ordering_key,
                self._headers(message.message_id, message.headers),
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
                f"{len(messages)} message(s) on {self.topic!r} (some may have been written): "
                + "; ".join(failures[:5])
            )
        self._brokers_down = False
        return [
            KafkaPublishResult(
                message.message_id, reports[i][1].partition(), reports[i][1].offset()
            )
            for i, message in enumerate(messages)
        ]

    def stats(self) -> QueueStats:
        """lag: per partition of the main and retry topics, the end offset minus the group's
        committed offset (the start of the log when nothing is committed). depth = lag."""
        deadline = time.monotonic() + self.connect_timeout
        while True:
            try:
                return self._read_stats(self._stats_client())
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                # Right after provisioning, leadership may still be moving: ask again briefly.
                retriable = isinstance(error, KafkaError) and (
                    error.retriable() or error.code() in _TRANSIENT
                )
                if not retriable or time.monotonic() >= deadline:
                    raise self._translate(exc, "reading offsets") from exc
                time.sleep(0.1)

    def _read_stats(self, consumer: Consumer) -> QueueStats:
        timeout = self.connect_timeout
        metadata = consumer.list_topics(timeout=timeout)
        for topic in (self.topic, self.dlq_topic):
            if topic not in metadata.topics:
                raise QueueMissing(f"Kafka topic {topic!r} does not exist: provision it.")
        consumed = [
            TopicPartition(topic, p)
            for topic in (self.topic, self.retry_topic)
            if topic in metadata.topics
            for p in metadata.topics[topic].partitions
        ]
        committed = {
            (tp.topic, tp.partition): tp.offset
            for tp in consumer.committed(consumed, timeout=timeout)
        }
        lag = 0
        for tp in consumed:
            low, high = consumer.get_watermark_offsets(tp, timeout=timeout)
            position = committed.get((tp.topic, tp.partition), -1)
            lag += max(0, high - (position if position >= 0 else low))
        dead = 0
        for p in metadata.topics[self.dlq_topic].partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(self.dlq_topic, p), timeout=timeout
            )
            dead += max(0, high - low)
        return QueueStats(depth=lag, in_flight=None, dead_letters=dead, lag=lag)

    # -- consumer side ------------------------------------------------------------------------

    def fetch(self, max_messages: int = 10, wait_seconds: float = 1.0) -> list[Delivery]:
        consumer = self.consumer
        deadline = time.monotonic() + max(0.0, wait_seconds)
        deliveries: list[Delivery] = []
        while True:
            self._resume_due(consumer)
            # Once messages came, take only what is already here: no wait for more.
            timeout = 0.0 if deliveries else min(self.poll_slice, deadline - time.monotonic())
            timeout = max(0.0, timeout)
            try:
                batch = consumer.consume(
                    num_messages=max_messages - len(deliveries), timeout=timeout
                )
            except KafkaException as exc:
                raise self._translate(exc, "consuming") from exc
            taken = [d for d in (self._accept(consumer, m) for m in batch) if d is not None]
            deliveries.extend(taken)
            self._send_commit()  # consume() served the last commit's answer
            if len(deliveries) >= max_messages or (deliveries and not taken):
                return deliveries
            if time.monotonic() >= deadline:
                if not deliveries and self._brokers_down:
                    self._verify_brokers(consumer)
                return deliveries

    def ack(self, delivery: Delivery) -> None:
        handle = self._handle(delivery)
        try:
            target = self._offsets.acked(handle)
        except StaleAck as exc:
            raise LeaseLost(
                f"Message {delivery.message_id}: its partition was reassigned since the fetch; "
                "it will be delivered again."
            ) from exc
        if target is None:
            return
        try:
            self.consumer.commit(
                offsets=[TopicPartition(handle.topic, handle.partition, target)],
                asynchronous=False,
            )
        except KafkaException as exc:
            if exc.args[0].code() in _REBALANCED:
                raise LeaseLost(f"Message {delivery.message_id}: commit refused ({exc}).") from exc
            raise self._translate(exc, "committing") from exc
        self._offsets.committed(handle, target)

    def ack_many(self, deliveries: Sequence[Delivery]) -> list[QueueError | None]:
        """Forget the deliveries' offsets, then one asynchronous commit of the positions that
        moved (per partition, still never past an unacknowledged offset)."""
        results: list[QueueError | None] = [None] * len(deliveries)
        positions: dict[tuple[str, int], int] = {}
        for index, delivery in enumerate(deliveries):
            handle = self._handle(delivery)
            try:
                target = self._offsets.acked(handle)
            except StaleAck:
                results[index] = LeaseLost(
                    f"Message {delivery.message_id}: its partition was reassigned since the "
                    "fetch; it will be delivered again."
                )
                continue
            if target is not None:
                self._offsets.committed(handle, target)
                key = (handle.topic, handle.partition)
                positions[key] = max(target, positions.get(key, target))
        for key, position in positions.items():
            self._unsent[key] = max(position, self._unsent.get(key, position))
        try:
            self._send_commit()
        except QueueError as error:
            return [result or error for result in results]
        return results

    def _send_commit(self) -> None:
        """Commit the unsent positions asynchronously, unless a commit is still in flight
        (its answer, served by ``consume``, sends the next)."""
        in_flight = self._commit_sent_at is not None
        if not self._unsent or (
            in_flight and time.monotonic() - (self._commit_sent_at or 0) < self.commit_timeout
        ):
            return
        unsent, self._unsent = self._unsent, {}
        try:
            self.consumer.commit(
                offsets=[TopicPartition(t, p, offset) for (t, p), offset in unsent.items()],
                asynchronous=True,
            )
        except KafkaException as exc:
            raise self._translate(exc, "committing") from exc
        self._commit_sent_at = time.monotonic()
        self._async_positions.update(unsent)

    def retry_later(self, delivery: Delivery, delay_seconds: float) -> None:
        not_before = int((time.time() + max(0.0, delay_seconds)) * 1000)
        headers = [
            *self._headers(delivery.message_id, delivery.headers),
            (HEADER_ATTEMPT, str(delivery.attempt + 1)),
            (HEADER_NOT_BEFORE, str(not_before)),
        ]
        self._produce_now(self.retry_topic, delivery, headers)
        self.ack(delivery)

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        handle = self._handle(delivery)
        headers = [
            *self._headers(delivery.message_id, delivery.headers),
            (HEADER_ATTEMPT, str(delivery.attempt)),
            (HEADER_REASON, reason[:MAX_REASON]),
            (HEADER_ORIGIN, f"{handle.topic}/{handle.partition}/{handle.offset}"),
        ]
        self._produce_now(self.dlq_topic, delivery, headers)
        self.ack(delivery)

    # -- administration (kafka_dead_letters.py: how a log keeps "removed" dead letters) -----

    def dead_letters(self, limit: int = 50, keys: Iterable[str] | None = None) -> list[DeadLetter]:
        return KafkaDeadLetters(self).peek(limit, keys)

    def redrive(self, message_ids: Iterable[str] | None = None) -> int:
        return KafkaDeadLetters(self).redrive(message_ids)

    def delete_dead_letter(self, message_id: str) -> bool:
        return KafkaDeadLetters(self).delete(message_id)

    def purge(self) -> int:
        """DeleteRecords to the end of the topic and its retry topic; returns how many were
        waiting for the worker group."""
        return KafkaDeadLetters(self).purge()

    def settled_dead_letters(self) -> int:
        return KafkaDeadLetters(self).settled_count()

    def close(self) -> None:
        """Leave the group (unacknowledged messages go to the next reader) and stop the
        clients' threads."""
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            final = {**self._async_positions, **self._unsent}
            if final:
                with contextlib.suppress(KafkaException, RuntimeError):
                    consumer.commit(
                        offsets=[TopicPartition(t, p, offset) for (t, p), offset in final.items()],
                        asynchronous=False,
                    )
            with contextlib.suppress(KafkaException, RuntimeError):
                consumer.close()
        if self._stats_consumer is not None:
            stats, self._stats_consumer = self._stats_consumer, None
            with contextlib.suppress(KafkaException, RuntimeError):
                stats.close()
        if self._producer is not None:
            producer, self._producer = self._producer, None
            producer.flush(1)  # publish() flushed already: nothing should be left
            with contextlib.suppress(KafkaException, RuntimeError):
                producer.close()
        self._offsets.clear()
        self._held.clear()
        self._async_positions.clear()
        self._unsent.clear()
        self._commit_sent_at = None

    # -- clients ------------------------------------------------------------------------------

    def _config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "bootstrap.servers": self.queue.connection_url,
            "client.id": f"quaymaster.{self.queue.name}",
            "socket.connection.setup.timeout.ms": int(self.connect_timeout * 1000),
            "error_cb": self._on_error,
            # librdkafka's own log lines go through logging, not straight to stderr.
            "logger": logger,
        }
        if self.queue.username:
            config.update(
                {
                    "security.protocol": "SASL_SSL",
                    "sasl.mechanisms": "PLAIN",
                    "sasl.username": self.queue.username,
                    "sasl.password": self.queue.get_secret(),
                }
            )
        return config

    @property
    def producer(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(
                {
                    **self._config(),
                    "enable.idempotence": True,
                    "acks": "all",
                    "linger.ms": 2,
                    "partitioner": "murmur2_random",
                    "message.timeout.ms": int(self.delivery_timeout * 1000),
                    "allow.auto.create.topics": False,
                }
            )
        return self._producer

    @property
    def consumer(self) -> Consumer:
        if self._consumer is None:
            consumer = Consumer(
                {
                    **self._config(),
                    "group.id": self.group_id,
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "auto.offset.reset": "earliest",
                    "allow.auto.create.topics": False,
                    "on_commit": self._on_commit,
                }
            )
            try:
                metadata = consumer.list_topics(timeout=self.connect_timeout)
            except KafkaException as exc:
                consumer.close()
                raise self._translate(exc, "connecting") from exc
            missing = [t for t in (self.topic, self.retry_topic) if t not in metadata.topics]
            if missing:
                consumer.close()
                raise QueueMissing(f"Kafka topic(s) {missing} do not exist: provision the queue.")
            consumer.subscribe(
                [self.topic, self.retry_topic],
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_revoke,
            )
            self._consumer = consumer
        return self._consumer

    def _stats_client(self) -> Consumer:
        """A group member that never subscribes: it reads the group's committed offsets."""
        if self._stats_consumer is None:
            self._stats_consumer = Consumer(
                {**self._config(), "group.id": self.group_id, "enable.auto.commit": False}
            )
        return self._stats_consumer

    # -- consumer internals -------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._offsets.assigned()

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._offsets.revoked([(tp.topic, tp.partition)])
            self._held.pop((tp.topic, tp.partition), None)
            self._async_positions.pop((tp.topic, tp.partition), None)
            self._unsent.pop((tp.topic, tp.partition), None)

    def _on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """The answer to an asynchronous commit, served during ``consume``."""
        self._commit_sent_at = None
        failed = [tp for tp in partitions if tp.error is not None]
        if error is not None or failed:
            logger.warning(
                "Kafka refused a commit for queue %s (the messages may be delivered again): %s",
                self.queue.name,
                error or failed[0].error,
            )

    def _accept(self, consumer: Consumer, message: Any) -> Delivery | None:
        """A Delivery for ``message``, or None when it is an event or must wait."""
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                return None
            if error.code() in _MISSING:
                raise QueueMissing(f"Kafka topic {message.topic()!r} is missing: {error}")
            if error.fatal():
                raise BrokerUnavailable(f"Kafka consumer failed: {error}")
            return None
        key = (message.topic(), message.partition())
        if key in self._held:
            return None  # fetched before the pause took effect; the seek brings it back
        headers = {name: (value or b"").decode() for name, value in (message.headers() or [])}
        if message.topic() == self.retry_topic:
            not_before = int(headers.get(HEADER_NOT_BEFORE, "0") or 0) / 1000
            if not_before > time.time():
                tp = TopicPartition(message.topic(), message.partition())
                consumer.pause([tp])
                consumer.seek(
                    TopicPartition(message.topic(), message.partition(), message.offset())
                )
                self._held[key] = not_before
                return None
        handle = self._offsets.fetched(message.topic(), message.partition(), message.offset())
        raw_key = message.key()
        return Delivery(
            message_id=headers.get(HEADER_MESSAGE_ID)
            or f"{message.topic()}/{message.partition()}/{message.offset()}",
            body=message.value() or b"",
            attempt=int(headers.get(HEADER_ATTEMPT, "1") or 1),
            headers={k: v for k, v in headers.items() if not k.startswith(HEADER_PREFIX)},
            handle=handle,
            ordering_key=raw_key.decode() if raw_key else None,
        )

    def _resume_due(self, consumer: Consumer) -> None:
        now = time.time()
        due = [key for key, until in self._held.items() if until <= now]
        if due:
            consumer.resume([TopicPartition(topic, partition) for topic, partition in due])
            for key in due:
                del self._held[key]

    # -- producer internals -------------------------------------------------------------------

    @staticmethod
    def _headers(message_id: str, headers: Any) -> list[tuple[str, str | bytes | None]]:
        return [(HEADER_MESSAGE_ID, message_id), *headers.items()]

    def _produce(
        self,
        producer: Producer,
        message_id: str,
        topic: str,
        value: bytes,
        key: str | None,
        headers: list[tuple[str, str | bytes | None]],
        on_delivery: Any,
    ) -> None:
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
                code = exc.args[0].code()
                if code == KafkaError.MSG_SIZE_TOO_LARGE:
                    raise MessageTooLarge(
                        message_id, len(value), self.max_message_bytes, self.engine
                    ) from exc
                raise self._translate(exc, "producing") from exc
        raise BrokerUnavailable("Kafka producer queue stayed full.")

    def _produce_now(
        self, topic: str, delivery: Delivery, headers: list[tuple[str, str | bytes | None]]
    ) -> None:
        """Produce one message and wait for its delivery report."""
        reports: list[KafkaError | None] = []
        producer = self.producer
        self._produce(
            producer,
            delivery.message_id,
            topic,
            delivery.body,
            delivery.ordering_key,
            headers,
            lambda err, msg: reports.append(err),
        )
        producer.flush(self.delivery_timeout + 5)
        if not reports or reports[0] is not None:
            raise BrokerUnavailable(
                f"Kafka did not acknowledge message {delivery.message_id} on {topic!r}: "
                f"{reports[0] if reports else 'timed out'}"
            )

    def _ensure_topic(self, producer: Producer) -> None:
        if self._topic_known and not self._brokers_down:
            return
        try:
            metadata = producer.list_topics(topic=self.topic, timeout=self.connect_timeout)
        except KafkaException as exc:
            raise self._translate(exc, "reading metadata") from exc
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None:
            raise QueueMissing(f"Kafka topic {self.topic!r} does not exist: provision the queue.")
        self._topic_known = True
        self._brokers_down = False

    # -- errors -------------------------------------------------------------------------------

    def _on_error(self, error: KafkaError) -> None:
        # Called from poll()/flush()/consume() on the caller's thread.
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self._brokers_down = True

    def _verify_brokers(self, client: Consumer | Producer) -> None:
        try:
            client.list_topics(timeout=self.connect_timeout)
        except KafkaException as exc:
            raise self._translate(exc, "reconnecting") from exc
        self._brokers_down = False

    def _metadata(self, admin: AdminClient) -> Any:
        try:
            return admin.list_topics(timeout=self.connect_timeout)
        except KafkaException as exc:
            raise self._translate(exc, "connecting") from exc

    def _wait_for_topics(self, admin: AdminClient, topics: list[str]) -> None:
        """Topic creation returns before the topic is usable: metadata may name a leader that
        still answers NOT_LEADER_FOR_PARTITION for a moment. Wait until every partition answers
        an offsets request, so a publish, subscribe or stats right after provision works."""
        deadline = time.monotonic() + self.connect_timeout * 5
        probe = Consumer({**self._config(), "group.id": self.group_id})
        try:
            while True:
                metadata = self._metadata(admin)
                try:
                    if all(
                        t in metadata.topics
                        and metadata.topics[t].error is None
                        and metadata.topics[t].partitions
                        for t in topics
                    ):
                        for t in topics:
                            for p in metadata.topics[t].partitions:
                                probe.get_watermark_offsets(
                                    TopicPartition(t, p), timeout=self.connect_timeout
                                )
                        return
                except KafkaException as exc:
                    error = exc.args[0] if exc.args else None
                    transient = isinstance(error, KafkaError) and (
                        error.code() in _TRANSIENT or error.code() in _MISSING
                    )
                    if not transient:
                        raise self._translate(exc, "waiting for new topics") from exc
                if time.monotonic() >= deadline:
                    raise BrokerUnavailable(f"Kafka topics {topics} did not become ready in time.")
                time.sleep(0.05)
        finally:
            probe.close()

    def _translate(self, exc: KafkaException, doing: str) -> QueueError:
        error = exc.args[0] if exc.args else None
        code = error.code() if isinstance(error, KafkaError) else None
        where = self.queue.url or "KAFKA_BOOTSTRAP_SERVERS"
        if code in _AUTH:
            return BadConfiguration(f"Kafka refused the credentials while {doing}: {error}")
        if code in _MISSING:
            return QueueMissing(f"Kafka topic {self.topic!r} is missing ({doing}): {error}")
        if code == KafkaError._INVALID_ARG:
            return BadConfiguration(f"Kafka refused the configuration while {doing}: {error}")
        return BrokerUnavailable(f"Kafka at {where} failed while {doing}: {error}")

    def _handle(self, delivery: Delivery) -> KafkaHandle:
        if not isinstance(delivery.handle, KafkaHandle):
            raise TypeError("This delivery was not fetched by a Kafka backend.")
        return delivery.handle
