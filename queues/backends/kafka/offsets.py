"""Which offset a Kafka consumer may commit: only the acknowledged prefix of each partition.

Deliveries are acknowledged out of order (handlers run in parallel). Committing a delivery's
own offset + 1 would also commit every earlier offset still in flight, and a crash would lose
them. The tracker keeps, per assigned partition, the offsets fetched and not yet acknowledged;
the commit position is the lowest of them, or the last fetched + 1 when none is left.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class KafkaHandle:
    topic: str
    partition: int
    offset: int
    epoch: int  # the assignment this delivery came from (acks across a rebalance are void)


class StaleAck(Exception):
    """The delivery's partition was revoked (and maybe reassigned) since it was fetched."""


@dataclass
class _Partition:
    epoch: int
    committed: int  # the position we started from, then the last position we committed
    next_offset: int  # last fetched + 1
    in_flight: set[int] = field(default_factory=set)


class OffsetTracker:
    def __init__(self) -> None:
        self._epoch = 0
        self._partitions: dict[tuple[str, int], _Partition] = {}

    def assigned(self) -> None:
        """A new assignment: deliveries fetched before it can no longer be committed."""
        self._epoch += 1

    def revoked(self, partitions: Iterable[tuple[str, int]]) -> None:
        for key in partitions:
            self._partitions.pop(key, None)

    def clear(self) -> None:
        self._partitions.clear()

    def fetched(self, topic: str, partition: int, offset: int) -> KafkaHandle:
        state = self._partitions.get((topic, partition))
        if state is None:
            # Nothing below the first offset we read is ours to commit.
            state = self._partitions[(topic, partition)] = _Partition(self._epoch, offset, offset)
        state.in_flight.add(offset)
        state.next_offset = max(state.next_offset, offset + 1)
        return KafkaHandle(topic, partition, offset, state.epoch)

    def acked(self, handle: KafkaHandle) -> int | None:
        """Forget ``handle``'s offset; the position to commit if it moved forward, else None."""
        state = self._partitions.get((handle.topic, handle.partition))
        if state is None or state.epoch != handle.epoch:
            raise StaleAck(f"{handle.topic}/{handle.partition} was reassigned since the fetch")
        state.in_flight.discard(handle.offset)
        target = min(state.in_flight) if state.in_flight else state.next_offset
        return target if target > state.committed else None

    def committed(self, handle: KafkaHandle, position: int) -> None:
        state = self._partitions.get((handle.topic, handle.partition))
        if state is not None and state.epoch == handle.epoch:
            state.committed = max(state.committed, position)


Key = tuple[str, int]  # (topic, partition)


class PartitionState:
    """Everything a consumer keeps per partition, so that a revoke or a close clears it in one
    place: the offset tracker, retry partitions held back until a time, and the commit
    positions acknowledged through ``ack_many`` (sent asynchronously, or waiting to be sent
    while an earlier commit is in flight)."""

    def __init__(self) -> None:
        self.offsets = OffsetTracker()
        #: Retry partitions paused until their head is due (epoch seconds).
        self.held: dict[Key, float] = {}
        #: Positions sent in an asynchronous commit (the last per partition).
        self.sent: dict[Key, int] = {}
        #: Positions acknowledged and not sent yet.
        self.unsent: dict[Key, int] = {}
        #: When the asynchronous commit in flight was sent (monotonic); None: none is.
        self.commit_sent_at: float | None = None

    def hold(self, key: Key, until: float) -> None:
        self.held[key] = until

    def due(self, now: float) -> list[Key]:
        """The held partitions whose head is due at ``now``; no longer held."""
        keys = [key for key, until in self.held.items() if until <= now]
        for key in keys:
            del self.held[key]
        return keys

    def to_commit(self, positions: dict[Key, int]) -> None:
        for key, position in positions.items():
            self.unsent[key] = max(position, self.unsent.get(key, position))

    def take_unsent(self, now: float, timeout: float) -> dict[Key, int]:
        """The positions to send now: none while a commit sent less than ``timeout`` ago is
        unanswered (its answer sends the next)."""
        if not self.unsent or (
            self.commit_sent_at is not None and now - self.commit_sent_at < timeout
        ):
            return {}
        unsent, self.unsent = self.unsent, {}
        return unsent

    def commit_sent(self, positions: dict[Key, int], now: float) -> None:
        self.commit_sent_at = now
        self.sent.update(positions)

    def last_positions(self) -> dict[Key, int]:
        """What a closing consumer commits: every position acknowledged through ack_many."""
        return {**self.sent, **self.unsent}

    def revoked(self, keys: Iterable[Key]) -> None:
        keys = list(keys)
        self.offsets.revoked(keys)
        for key in keys:
            self.held.pop(key, None)
            self.sent.pop(key, None)
            self.unsent.pop(key, None)

    def clear(self) -> None:
        self.offsets.clear()
        self.held.clear()
        self.sent.clear()
        self.unsent.clear()
        self.commit_sent_at = None
