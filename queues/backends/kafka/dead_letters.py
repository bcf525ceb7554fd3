"""Kafka dead letters: ``<name>.dlq`` is a log, so "removed from the DLQ" is a mark we keep.

Which dead letters are settled (sent back or deleted) is the committed offset of the consumer
group ``quaymaster.<name>.dlq-redrive`` on each DLQ partition, plus — for the ones settled out
of order — the list of settled offsets above it, in that commit's metadata (``v1:5-9,12``;
Kafka keeps up to ``offset.metadata.max.bytes``, 4 KiB by default). The state lives in Kafka
next to the data, needs no table, and is read by anyone with the group's name. When the
settled prefix grows, the offset moves up and the list shrinks, and the records below it are
dropped from the topic with DeleteRecords (best effort), so the topic's size — what
``stats()`` counts — follows. ``settled_dead_letters()`` is what ``stats()`` still counts
that is settled (marks above the prefix, or a failed DeleteRecords).

No member ever joins the redrive group: it is read and committed by consumers that ``assign``
partitions, so nothing rebalances and any process can do it. Two admins at once would
overwrite each other's marks; ``queues.dead_letters`` serialises them with a row lock
(``KafkaBackend.serialise_admin``). The marks themselves are kept by ``settled.py``.

* Peek: from the committed offset to the high watermark of each partition, skipping settled
  offsets; the oldest ``limit`` by record time.
* Send back: produce to ``<name>`` with the record's key (its ordering key, so it lands in its
  key's partition), our message id and the message's own headers; the reason, origin and
  attempt headers are dropped, so the attempt count starts again at 1. Only after the
  producer's delivery report are the records marked settled (at least once: a crash in
  between sends them again next time).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from queues.backends.kafka.admin import KafkaAdmin
from queues.backends.kafka.client import KafkaClient
from queues.backends.kafka.producer import KafkaProducer, record_headers
from queues.backends.kafka.settled import Settled
from queues.backends.scan import SCAN_LIMIT, Deadline, all_found, as_text, attempts_from, wanted_set
from queues.errors import BrokerUnavailable, QueueMissing
from queues.messages import HEADER_ATTEMPT, HEADER_MESSAGE_ID, HEADER_REASON, DeadLetter

HEADER_ORIGIN = "quaymaster-origin"  # topic/partition/offset of a dead letter's original


@dataclass
class _Partition:
    settled: Settled
    low: int
    high: int


class KafkaDeadLetters:
    """A queue's dead letters, read with a consumer of the redrive group, sent back with the
    queue's producer; ``user_headers`` turns a record's headers into the message's own."""

    def __init__(
        self,
        client: KafkaClient,
        producer: KafkaProducer,
        admin: KafkaAdmin,
        user_headers: Callable[[Mapping[str, Any]], dict[str, str]],
    ) -> None:
        self.client = client
        self.producer = producer
        self.admin = admin
        self.user_headers = user_headers
        self.topic = client.names.dlq_topic
        self.group = f"{client.names.group_id}.dlq-redrive"
        self.timeout = client.connect_timeout

    # -- the four operations ------------------------------------------------------------------

    def peek(self, limit: int, keys: Iterable[str] | None) -> list[DeadLetter]:
        wanted = wanted_set(keys)
        with self._consumer() as consumer:
            state = self._state(consumer)
            picked = self._read(consumer, state, per_partition=max(0, limit), wanted=wanted)
        letters = [letter for letter, _ in picked]
        letters.sort(key=lambda letter: letter.at or datetime.min.replace(tzinfo=UTC))
        return letters[:limit]

    def redrive(self, message_ids: Iterable[str] | None) -> int:
        with self._consumer() as consumer:
            state = self._state(consumer)
            picked = self._read(consumer, state, SCAN_LIMIT, wanted_set(message_ids))
            if not picked:
                return 0
            failures = self._produce_back(picked)
            sent = [(letter, spot) for letter, spot in picked if letter.key not in failures]
            self._settle(consumer, state, [spot for _, spot in sent])
        if failures:
            raise BrokerUnavailable(
                f"Kafka did not take {len(failures)} of {len(picked)} message(s) back on "
                f"{self.client.names.topic!r} (they stay dead letters): "
                + "; ".join(list(failures.values())[:3])
            )
        return len(sent)

    def delete(self, message_id: str) -> bool:
        with self._consumer() as consumer:
            state = self._state(consumer)
            picked = self._read(consumer, state, SCAN_LIMIT, {message_id})
            self._settle(consumer, state, [spot for _, spot in picked])
        return bool(picked)

    def settled_count(self) -> int:
        with self._consumer() as consumer:
            state = self._state(consumer)
        return sum(max(0, p.settled.offset - p.low) + len(p.settled.above) for p in state.values())

    # -- reading ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _consumer(self) -> Iterator[Consumer]:
        consumer = self.client.consumer(
            self.group,
            **{
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
                "allow.auto.create.topics": False,
            },
        )
        try:
            yield consumer
        except KafkaException as exc:
            raise self.client.translate(exc, "reading dead letters") from exc
        finally:
            with contextlib.suppress(KafkaException, RuntimeError):
                consumer.close()

    def _state(self, consumer: Consumer) -> dict[int, _Partition]:
        metadata = consumer.list_topics(topic=self.topic, timeout=self.timeout)
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None:
            raise QueueMissing(f"Kafka topic {self.topic!r} does not exist: provision the queue.")
        partitions = [TopicPartition(self.topic, p) for p in sorted(topic.partitions)]
        state = {}
        for tp in consumer.committed(partitions, timeout=self.timeout):
            low, high = consumer.get_watermark_offsets(
                TopicPartition(self.topic, tp.partition), timeout=self.timeout
            )
            state[tp.partition] = _Partition(Settled.read(tp.offset, tp.metadata, low), low, high)
        return state

    def _read(
        self,
        consumer: Consumer,
        state: dict[int, _Partition],
        per_partition: int,
        wanted: set[str] | None,
    ) -> list[tuple[DeadLetter, tuple[int, int]]]:
        """Unsettled dead letters (matching ``wanted``), up to ``per_partition`` from each."""
        reading = {p for p, s in state.items() if s.settled.offset < s.high}
        if not reading or per_partition <= 0:
            return []
        consumer.assign([TopicPartition(self.topic, p, state[p].settled.offset) for p in reading])
        found: dict[int, list[tuple[DeadLetter, tuple[int, int]]]] = {p: [] for p in reading}
        deadline = Deadline()
        while reading and not deadline.passed:
            for message in consumer.consume(500, timeout=min(0.5, deadline.remaining)):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        reading.discard(int(message.partition() or 0))
                        continue
                    raise KafkaException(error)
                partition, offset = int(message.partition() or 0), int(message.offset() or 0)
                spot = state[partition]
                if partition not in reading or offset >= spot.high:
                    continue
                if offset >= spot.high - 1:
                    reading.discard(partition)
                if spot.settled.has(offset):
                    continue
                letter = self.letter(message)
                if letter.matches(wanted):
                    found[partition].append((letter, (partition, offset)))
                    if len(found[partition]) >= per_partition:
                        reading.discard(partition)
            if all_found((f[0] for rows in found.values() for f in rows), wanted):
                break
        return [row for rows in found.values() for row in rows]

    def letter(self, message: Any) -> DeadLetter:
        headers = {name: as_text(value) for name, value in (message.headers() or [])}
        partition, offset = message.partition(), message.offset()
        _, stamp = message.timestamp()
        return DeadLetter(
            key=f"{partition}-{offset}",
            message_id=headers.get(HEADER_MESSAGE_ID) or f"{partition}-{offset}",
            body=message.value() or b"",
            reason=headers.get(HEADER_REASON) or "(no reason recorded)",
            attempts=attempts_from(headers.get(HEADER_ATTEMPT)),
            headers=self.user_headers(headers),
            ordering_key=message.key().decode(errors="replace") if message.key() else None,
            at=datetime.fromtimestamp(stamp / 1000, tz=UTC) if stamp > 0 else None,
            origin=f"Kafka {self.topic} partition {partition} offset {offset}"
            + (f", from {headers[HEADER_ORIGIN]}" if headers.get(HEADER_ORIGIN) else ""),
        )

    # -- writing ------------------------------------------------------------------------------

    def _produce_back(self, picked: list[tuple[DeadLetter, tuple[int, int]]]) -> dict[str, str]:
        """Produce each to the main topic; the keys that failed, with why."""
        reports: dict[str, KafkaError | None] = {}
        for letter, _ in picked:
            self.producer.produce(
                letter.message_id,
                self.client.names.topic,
                letter.body,
                letter.ordering_key,
                record_headers(letter.message_id, letter.headers),
                lambda err, msg, k=letter.key: reports.__setitem__(k, err),
            )
        self.producer.flush()
        return {
            letter.key: str(reports.get(letter.key) or "no delivery report in time")
            for letter, _ in picked
            if letter.key not in reports or reports[letter.key] is not None
        }

    def _settle(
        self, consumer: Consumer, state: dict[int, _Partition], spots: list[tuple[int, int]]
    ) -> None:
        if not spots:
            return
        changed = set()
        for partition, offset in spots:
            state[partition].settled.settle(offset)
            changed.add(partition)
        consumer.commit(
            offsets=[
                TopicPartition(
                    self.topic, p, state[p].settled.offset, metadata=state[p].settled.metadata()
                )
                for p in sorted(changed)
            ],
            asynchronous=False,
        )
        # Drop the settled prefix from the topic, so its size counts what is left.
        self.admin.delete_records(
            [
                TopicPartition(self.topic, p, state[p].settled.offset)
                for p in sorted(changed)
                if state[p].settled.offset > state[p].low
            ],
            strict=False,
        )
