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
overwrite each other's marks; ``queues.dead_letters`` serialises them with a row lock.

* Peek: from the committed offset to the high watermark of each partition, skipping settled
  offsets; the oldest ``limit`` by record time.
* Send back: produce to ``<name>`` with the record's key (its ordering key, so it lands in its
  key's partition), our message id and the message's own headers; the reason, origin and
  attempt headers are dropped, so the attempt count starts again at 1. Only after the
  producer's delivery report are the records marked settled (at least once: a crash in
  between sends them again next time).
* Purge: DeleteRecords up to the high watermark on ``<name>`` and ``<name>.retry``, then the
  worker group's offsets are moved to the end (refused while workers are in the group; their
  consumers then skip to the new log start by themselves, ``auto.offset.reset=earliest``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from queues.backends.base import HEADER_ATTEMPT, HEADER_MESSAGE_ID, HEADER_REASON
from queues.backends.scan import SCAN_LIMIT, Deadline, all_found, as_text, attempts_from, wanted_set
from queues.errors import BrokerUnavailable, QueueError, QueueMissing
from queues.messages import DeadLetter, user_headers

if TYPE_CHECKING:
    from queues.backends.kafka import KafkaBackend

METADATA_VERSION = "v1:"
#: Kafka's default offset.metadata.max.bytes is 4096; stay below it.
MAX_METADATA = 4000
HEADER_ORIGIN = "quaymaster-origin"


@dataclass
class Settled:
    """One DLQ partition: every offset below ``offset`` is settled, and those in ``above``."""

    offset: int
    above: set[int] = field(default_factory=set)

    @classmethod
    def read(cls, committed: int, metadata: str | None, low: int) -> Settled:
        start = max(committed, low) if committed >= 0 else low
        settled = cls(start, {o for o in _parse(metadata or "") if o >= start})
        settled._compact()
        return settled

    def settle(self, offset: int) -> None:
        if offset >= self.offset:
            self.above.add(offset)
            self._compact()

    def has(self, offset: int) -> bool:
        return offset < self.offset or offset in self.above

    def metadata(self) -> str:
        text = METADATA_VERSION + _ranges(sorted(self.above))
        if len(text) > MAX_METADATA:
            raise QueueError(
                "Too many dead letters were settled out of order on one partition for Kafka to "
                "remember: send back or delete the oldest ones first."
            )
        return text

    def _compact(self) -> None:
        while self.offset in self.above:
            self.above.remove(self.offset)
            self.offset += 1


@dataclass
class _Partition:
    settled: Settled
    low: int
    high: int


class KafkaDeadLetters:
    def __init__(self, backend: KafkaBackend) -> None:
        self.backend = backend
        self.topic = backend.dlq_topic
        self.group = f"{backend.group_id}.dlq-redrive"
        self.timeout = backend.connect_timeout

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
                f"{self.backend.topic!r} (they stay dead letters): "
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

    def purge(self) -> int:
        consumer = self.backend._stats_client()
        try:
            metadata = consumer.list_topics(timeout=self.timeout)
            if self.backend.topic not in metadata.topics:
                raise QueueMissing(f"Kafka topic {self.backend.topic!r} does not exist.")
            ends: list[TopicPartition] = []
            waiting = 0
            for topic in (self.backend.topic, self.backend.retry_topic):
                if topic not in metadata.topics:
                    continue
                partitions = [TopicPartition(topic, p) for p in metadata.topics[topic].partitions]
                for tp in consumer.committed(partitions, timeout=self.timeout):
                    low, high = consumer.get_watermark_offsets(tp, timeout=self.timeout)
                    waiting += max(0, high - max(low, tp.offset))
                    ends.append(TopicPartition(topic, tp.partition, high))
            self._delete_records(ends, strict=True)
        except KafkaException as exc:
            raise self.backend._translate(exc, "purging") from exc
        with contextlib.suppress(KafkaException):
            consumer.commit(offsets=ends, asynchronous=False)
        return waiting

    # -- reading ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _consumer(self) -> Iterator[Consumer]:
        consumer = Consumer(
            {
                **self.backend._config(),
                "group.id": self.group,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
                "allow.auto.create.topics": False,
            }
        )
        try:
            yield consumer
        except KafkaException as exc:
            raise self.backend._translate(exc, "reading dead letters") from exc
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
            headers=user_headers(headers, ("x-",)),
            ordering_key=message.key().decode(errors="replace") if message.key() else None,
            at=datetime.fromtimestamp(stamp / 1000, tz=UTC) if stamp > 0 else None,
            origin=f"Kafka {self.topic} partition {partition} offset {offset}"
            + (f", from {headers[HEADER_ORIGIN]}" if headers.get(HEADER_ORIGIN) else ""),
        )

    # -- writing ------------------------------------------------------------------------------

    def _produce_back(self, picked: list[tuple[DeadLetter, tuple[int, int]]]) -> dict[str, str]:
        """Produce each to the main topic; the keys that failed, with why."""
        producer = self.backend.producer
        reports: dict[str, KafkaError | None] = {}
        for letter, _ in picked:
            headers: list[tuple[str, str | bytes | None]] = [
                (HEADER_MESSAGE_ID, letter.message_id),
                *letter.headers.items(),
            ]
            self.backend._produce(
                producer,
                letter.message_id,
                self.backend.topic,
                letter.body,
                letter.ordering_key,
                headers,
                lambda err, msg, k=letter.key: reports.__setitem__(k, err),
            )
        producer.flush(self.backend.delivery_timeout + 5)
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
        self._delete_records(
            [
                TopicPartition(self.topic, p, state[p].settled.offset)
                for p in sorted(changed)
                if state[p].settled.offset > state[p].low
            ],
            strict=False,
        )

    def _delete_records(self, offsets: list[TopicPartition], strict: bool) -> None:
        offsets = [tp for tp in offsets if tp.offset > 0]
        if not offsets:
            return
        admin = AdminClient(self.backend._config())
        futures = admin.delete_records(
            offsets, request_timeout=self.timeout * 5, operation_timeout=self.timeout * 5
        )
        for future in futures.values():
            try:
                future.result(timeout=self.timeout * 5 + 1)
            except KafkaException:
                if strict:
                    raise


def _parse(metadata: str) -> set[int]:
    if not metadata.startswith(METADATA_VERSION):
        return set()
    offsets: set[int] = set()
    for part in metadata[len(METADATA_VERSION) :].split(","):
        first, _, last = part.partition("-")
        with contextlib.suppress(ValueError):
            offsets.update(range(int(first), int(last or first) + 1))
    return offsets


def _ranges(offsets: list[int]) -> str:
    parts: list[str] = []
    start = previous = None
    for offset in offsets:
        if previous is not None and offset == previous + 1:
            previous = offset
            continue
        if start is not None:
            parts.append(f"{start}-{previous}" if previous != start else str(start))
        start = previous = offset
    if start is not None:
        parts.append(f"{start}-{previous}" if previous != start else str(start))
    return ",".join(parts)
