"""Kafka topic administration: provisioning, the connection check, stats and purging.

* Provision creates ``<name>``, ``<name>.retry`` (``partitions`` each) and ``<name>.dlq``,
  replication ``min(3, brokers)``, and waits until every partition answers. An existing topic
  is left as it is: Kafka cannot shrink a topic, and growing it would move keys to other
  partitions (and break their order).
* Stats: lag per partition of the main and retry topics, the end offset minus the group's
  committed offset (the start of the log when nothing is committed); depth = lag.
* Purge: DeleteRecords up to the high watermark on ``<name>`` and ``<name>.retry``, then the
  worker group's offsets are moved to the end (refused while workers are in the group; their
  consumers then skip to the new log start by themselves, ``auto.offset.reset=earliest``).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from queues.backends.kafka.client import MISSING, TRANSIENT, KafkaClient, error_code, retriable
from queues.errors import BrokerUnavailable, QueueMissing
from queues.messages import CheckResult, QueueStats


class KafkaAdmin:
    def __init__(self, client: KafkaClient) -> None:
        self.client = client
        self.names = client.names
        self.timeout = client.connect_timeout
        self._stats_consumer: Consumer | None = None

    def provision(self, partitions: int) -> None:
        """Create the missing topics."""
        admin = self.client.admin()
        metadata = self.client.metadata(admin)
        replication = max(1, min(3, len(metadata.brokers)))
        names = self.names
        wanted = [
            NewTopic(topic, num_partitions=partitions, replication_factor=replication)
            for topic in (names.topic, names.retry_topic, names.dlq_topic)
            if topic not in metadata.topics
        ]
        if not wanted:
            return
        futures = admin.create_topics(wanted, operation_timeout=self.timeout * 5)
        for topic, future in futures.items():
            try:
                future.result(timeout=self.timeout * 5)
            except KafkaException as exc:
                if error_code(exc) != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise self.client.translate(exc, f"creating topic {topic!r}") from exc
        self._wait_for_topics(admin, [t.topic for t in wanted])

    def check(self) -> CheckResult:
        metadata = self.client.metadata(self.client.admin())
        topic = self.names.topic
        exists = topic in metadata.topics and metadata.topics[topic].error is None
        detail = f"connected to {len(metadata.brokers)} broker(s)"
        return CheckResult(True, detail if exists else f"{detail}; topic missing", exists)

    def stats(self) -> QueueStats:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return self._read_stats(self.stats_consumer())
            except KafkaException as exc:
                # Right after provisioning, leadership may still be moving: ask again briefly.
                if not retriable(exc) or time.monotonic() >= deadline:
                    raise self.client.translate(exc, "reading offsets") from exc
                time.sleep(0.1)

    def purge(self) -> int:
        """Returns how many records were waiting for the worker group."""
        consumer = self.stats_consumer()
        names = self.names
        try:
            metadata = consumer.list_topics(timeout=self.timeout)
            if names.topic not in metadata.topics:
                raise QueueMissing(f"Kafka topic {names.topic!r} does not exist.")
            ends: list[TopicPartition] = []
            waiting = 0
            for topic in (names.topic, names.retry_topic):
                if topic not in metadata.topics:
                    continue
                partitions = [TopicPartition(topic, p) for p in metadata.topics[topic].partitions]
                for tp in consumer.committed(partitions, timeout=self.timeout):
                    low, high = consumer.get_watermark_offsets(tp, timeout=self.timeout)
                    waiting += max(0, high - max(low, tp.offset))
                    ends.append(TopicPartition(topic, tp.partition, high))
            self.delete_records(ends, strict=True)
        except KafkaException as exc:
            raise self.client.translate(exc, "purging") from exc
        with contextlib.suppress(KafkaException):
            consumer.commit(offsets=ends, asynchronous=False)
        return waiting

    def delete_records(self, offsets: list[TopicPartition], strict: bool) -> None:
        """DeleteRecords below each offset; ``strict``: a failure raises (KafkaException)."""
        offsets = [tp for tp in offsets if tp.offset > 0]
        if not offsets:
            return
        admin = self.client.admin()  # held until the futures are answered
        futures = admin.delete_records(
            offsets, request_timeout=self.timeout * 5, operation_timeout=self.timeout * 5
        )
        for future in futures.values():
            try:
                future.result(timeout=self.timeout * 5 + 1)
            except KafkaException:
                if strict:
                    raise

    def stats_consumer(self) -> Consumer:
        """A group member that never subscribes: it reads the group's committed offsets."""
        if self._stats_consumer is None:
            self._stats_consumer = self.client.consumer(
                self.names.group_id, **{"enable.auto.commit": False}
            )
        return self._stats_consumer

    def close(self) -> None:
        if self._stats_consumer is not None:
            stats, self._stats_consumer = self._stats_consumer, None
            with contextlib.suppress(KafkaException, RuntimeError):
                stats.close()

    # -- internals ----------------------------------------------------------------------------

    def _read_stats(self, consumer: Consumer) -> QueueStats:
        timeout = self.timeout
        names = self.names
        metadata = consumer.list_topics(timeout=timeout)
        for topic in (names.topic, names.dlq_topic):
            if topic not in metadata.topics:
                raise QueueMissing(f"Kafka topic {topic!r} does not exist: provision it.")
        consumed = [
            TopicPartition(topic, p)
            for topic in (names.topic, names.retry_topic)
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
        for p in metadata.topics[names.dlq_topic].partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(names.dlq_topic, p), timeout=timeout
            )
            dead += max(0, high - low)
        return QueueStats(depth=lag, in_flight=None, dead_letters=dead, lag=lag)

    def _wait_for_topics(self, admin: AdminClient, topics: list[str]) -> None:
        """Topic creation returns before the topic is usable: metadata may name a leader that
        still answers NOT_LEADER_FOR_PARTITION for a moment. Wait until every partition answers
        an offsets request, so a publish, subscribe or stats right after provision works."""
        deadline = time.monotonic() + self.timeout * 5
        probe = self.client.consumer(self.names.group_id)
        try:
            while True:
                metadata = self.client.metadata(admin)
                try:
                    if _all_ready(metadata, topics):
                        for t in topics:
                            for p in metadata.topics[t].partitions:
                                probe.get_watermark_offsets(
                                    TopicPartition(t, p), timeout=self.timeout
                                )
                        return
                except KafkaException as exc:
                    if error_code(exc) not in TRANSIENT | MISSING:
                        raise self.client.translate(exc, "waiting for new topics") from exc
                if time.monotonic() >= deadline:
                    raise BrokerUnavailable(f"Kafka topics {topics} did not become ready in time.")
                time.sleep(0.05)
        finally:
            probe.close()


def _all_ready(metadata: Any, topics: list[str]) -> bool:
    return all(
        t in metadata.topics and metadata.topics[t].error is None and metadata.topics[t].partitions
        for t in topics
    )
