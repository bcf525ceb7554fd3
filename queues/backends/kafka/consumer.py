"""The Kafka consumer side: the group ``quaymaster.<name>`` reads ``<name>`` and ``<name>.retry``.

Acks commit explicit offsets, never "everything fetched" (``offsets.py``). ``ack`` commits
synchronously; ``ack_many`` asynchronously with at most one commit in flight, positions
acknowledged meanwhile merged and sent when its answer comes (served by the next ``fetch``).
A retry partition whose head is not due yet is held (pause + seek back) and resumed when due.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from queues.backends.kafka.client import MISSING, REBALANCED, KafkaClient
from queues.backends.kafka.membership import membership_config
from queues.backends.kafka.offsets import KafkaHandle, Key, PartitionState, StaleAck
from queues.errors import BrokerUnavailable, LeaseLost, QueueError, QueueMissing
from queues.messages import HEADER_ATTEMPT, HEADER_MESSAGE_ID, HEADER_NOT_BEFORE, Delivery

logger = logging.getLogger("queues.backends.kafka")


def _stale(delivery: Delivery) -> LeaseLost:
    return LeaseLost(
        f"Message {delivery.message_id}: its partition was reassigned since the fetch; "
        "it will be delivered again."
    )


class KafkaConsumer:
    """One group member; ``user_headers`` turns a record's headers into the message's own."""

    def __init__(
        self,
        client: KafkaClient,
        poll_slice: float,
        commit_timeout: float,
        user_headers: Callable[[Mapping[str, Any]], dict[str, str]],
    ) -> None:
        self.client = client
        self.poll_slice = poll_slice
        self.commit_timeout = commit_timeout
        self.user_headers = user_headers
        self.partitions = PartitionState()
        self._consumer: Consumer | None = None

    @property
    def consumer(self) -> Consumer:
        if self._consumer is None:
            names = self.client.names
            consumer = self.client.consumer(
                names.group_id,
                **{
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "auto.offset.reset": "earliest",
                    "allow.auto.create.topics": False,
                    "on_commit": self._on_commit,
                    # Session, heartbeats, static membership, protocol: how fast a dead
                    # member's partitions move (membership.py).
                    **membership_config(),
                },
            )
            try:
                metadata = consumer.list_topics(timeout=self.client.connect_timeout)
            except KafkaException as exc:
                consumer.close()
                raise self.client.translate(exc, "connecting") from exc
            missing = [t for t in (names.topic, names.retry_topic) if t not in metadata.topics]
            if missing:
                consumer.close()
                raise QueueMissing(f"Kafka topic(s) {missing} do not exist: provision the queue.")
            consumer.subscribe(
                [names.topic, names.retry_topic],
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_revoke,
            )
            self._consumer = consumer
        return self._consumer

    def fetch(self, max_messages: int, wait_seconds: float) -> list[Delivery]:
        consumer = self.consumer
        deadline = time.monotonic() + max(0.0, wait_seconds)
        deliveries: list[Delivery] = []
        while True:
            self._resume_due(consumer)
            # Once messages came, take only what is already here: no wait for more.
            timeout = 0.0 if deliveries else min(self.poll_slice, deadline - time.monotonic())
            timeout = max(0.0, timeout)
            try:
                batch = self._take(consumer, max_messages - len(deliveries), timeout)
            except KafkaException as exc:
                raise self.client.translate(exc, "consuming") from exc
            taken = [d for d in (self._accept(consumer, m) for m in batch) if d is not None]
            deliveries.extend(taken)
            self._send_commit()  # consume() served the last commit's answer
            if len(deliveries) >= max_messages or (deliveries and not taken):
                return deliveries
            if time.monotonic() >= deadline:
                if not deliveries and self.client.brokers_down:
                    self.client.verify_brokers(consumer)
                return deliveries

    @staticmethod
    def _take(consumer: Consumer, count: int, timeout: float) -> list[Any]:
        """Up to ``count`` messages, returning as soon as the first arrives. (``consume``
        waits out its whole timeout unless ``count`` arrive: at 100 messages/s a worker of
        concurrency 10 held each message for half its 0.1 s slice on average.)"""
        first = consumer.poll(timeout) if timeout > 0 else None
        if first is None:
            return list(consumer.consume(num_messages=count, timeout=0)) if timeout <= 0 else []
        if count <= 1:
            return [first]
        return [first, *consumer.consume(num_messages=count - 1, timeout=0)]

    def ack(self, delivery: Delivery, handle: KafkaHandle) -> None:
        """Commit synchronously: committed when it returns."""
        try:
            target = self.partitions.offsets.acked(handle)
        except StaleAck as exc:
            raise _stale(delivery) from exc
        if target is None:
            return
        try:
            self.consumer.commit(
                offsets=[TopicPartition(handle.topic, handle.partition, target)],
                asynchronous=False,
            )
        except KafkaException as exc:
            if exc.args[0].code() in REBALANCED:
                raise LeaseLost(f"Message {delivery.message_id}: commit refused ({exc}).") from exc
            raise self.client.translate(exc, "committing") from exc
        self.partitions.offsets.committed(handle, target)

    def ack_many(
        self, deliveries: Sequence[Delivery], handles: Sequence[KafkaHandle]
    ) -> list[QueueError | None]:
        """Forget the deliveries' offsets, then one asynchronous commit of the positions that
        moved (per partition, still never past an unacknowledged offset)."""
        results: list[QueueError | None] = [None] * len(deliveries)
        positions: dict[Key, int] = {}
        offsets = self.partitions.offsets
        for index, (delivery, handle) in enumerate(zip(deliveries, handles, strict=True)):
            try:
                target = offsets.acked(handle)
            except StaleAck:
                results[index] = _stale(delivery)
                continue
            if target is not None:
                offsets.committed(handle, target)
                key = (handle.topic, handle.partition)
                positions[key] = max(target, positions.get(key, target))
        self.partitions.to_commit(positions)
        try:
            self._send_commit()
        except QueueError as error:
            return [result or error for result in results]
        return results

    def close(self) -> None:
        """Commit the last positions synchronously and leave the group (unacknowledged
        messages go to the next reader)."""
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            final = self.partitions.last_positions()
            if final:
                with contextlib.suppress(KafkaException, RuntimeError):
                    consumer.commit(
                        offsets=[TopicPartition(t, p, offset) for (t, p), offset in final.items()],
                        asynchronous=False,
                    )
            with contextlib.suppress(KafkaException, RuntimeError):
                consumer.close()
        self.partitions.clear()

    # -- internals ----------------------------------------------------------------------------

    def _send_commit(self) -> None:
        """Commit the unsent positions asynchronously, unless a commit is still in flight
        (its answer, served by ``consume``, sends the next)."""
        unsent = self.partitions.take_unsent(time.monotonic(), self.commit_timeout)
        if not unsent:
            return
        try:
            self.consumer.commit(
                offsets=[TopicPartition(t, p, offset) for (t, p), offset in unsent.items()],
                asynchronous=True,
            )
        except KafkaException as exc:
            raise self.client.translate(exc, "committing") from exc
        self.partitions.commit_sent(unsent, time.monotonic())

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.partitions.offsets.assigned()

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.partitions.revoked([(tp.topic, tp.partition) for tp in partitions])

    def _on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """The answer to an asynchronous commit, served during ``consume``."""
        self.partitions.commit_sent_at = None
        failed = [tp for tp in partitions if tp.error is not None]
        if error is not None or failed:
            logger.warning(
                "Kafka refused a commit for queue %s (the messages may be delivered again): %s",
                self.client.queue.name,
                error or failed[0].error,
            )

    def _accept(self, consumer: Consumer, message: Any) -> Delivery | None:
        """A Delivery for ``message``, or None when it is an event or must wait."""
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                return None
            if error.code() in MISSING:
                raise QueueMissing(f"Kafka topic {message.topic()!r} is missing: {error}")
            if error.fatal():
                raise BrokerUnavailable(f"Kafka consumer failed: {error}")
            return None
        key = (message.topic(), message.partition())
        if key in self.partitions.held:
            return None  # fetched before the pause took effect; the seek brings it back
        headers = {name: (value or b"").decode() for name, value in (message.headers() or [])}
        if message.topic() == self.client.names.retry_topic:
            not_before = int(headers.get(HEADER_NOT_BEFORE, "0") or 0) / 1000
            if not_before > time.time():
                consumer.pause([TopicPartition(message.topic(), message.partition())])
                consumer.seek(
                    TopicPartition(message.topic(), message.partition(), message.offset())
                )
                self.partitions.hold(key, not_before)
                return None
        handle = self.partitions.offsets.fetched(
            message.topic(), message.partition(), message.offset()
        )
        raw_key = message.key()
        return Delivery(
            message_id=headers.get(HEADER_MESSAGE_ID)
            or f"{message.topic()}/{message.partition()}/{message.offset()}",
            body=message.value() or b"",
            attempt=int(headers.get(HEADER_ATTEMPT, "1") or 1),
            headers=self.user_headers(headers),
            handle=handle,
            ordering_key=raw_key.decode() if raw_key else None,
        )

    def _resume_due(self, consumer: Consumer) -> None:
        due = self.partitions.due(time.time())
        if due:
            consumer.resume([TopicPartition(topic, partition) for topic, partition in due])
