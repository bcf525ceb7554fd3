"""Which Kafka dead letters are settled (sent back or deleted): a log cannot drop a record from
its middle, so "removed from the DLQ" is a mark we keep.

Per DLQ partition, the committed offset of the consumer group ``quaymaster.<name>.dlq-redrive``
is the settled prefix, and the settled offsets above it (settled out of order) are listed in
that commit's metadata (``v1:5-9,12``; Kafka keeps up to ``offset.metadata.max.bytes``, 4 KiB
by default). When the prefix grows, the offset moves up and the list shrinks. Pure logic.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from queues.errors import QueueError

METADATA_VERSION = "v1:"
#: Kafka's default offset.metadata.max.bytes is 4096; stay below it.
MAX_METADATA = 4000


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
