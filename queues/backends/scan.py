"""What every engine's dead-letter scan shares: how an admin's choice of messages is matched,
how a reason's attempt count is read back, and the bounds that make every scan end.

Keys. A dead letter is acted on by its ``key``: the engine's handle for that one copy (the
DLQ copy's SQS MessageId, Kafka's ``<partition>-<offset>``, our message id on RabbitMQ and the
database queue). The backends also accept our message id, which then means every copy of it:
at-least-once dead-lettering can leave two copies of one message, and "send message X back"
should not leave one behind.

Scans are bounded: a broker's DLQ is read for at most ``SCAN_SECONDS`` and ``SCAN_LIMIT``
messages per call, so a huge dead-letter queue makes a page incomplete, never hung.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from queues.messages import DeadLetter

#: Longest a dead-letter scan (peek, redrive, delete) reads a broker's DLQ.
SCAN_SECONDS = 15.0
#: Most dead letters one scan reads; "send back all" beyond this needs another click.
SCAN_LIMIT = 5000


def wanted_set(ids: Iterable[str] | None) -> set[str] | None:
    """None means every dead letter; an empty selection means none (not all)."""
    if ids is None:
        return None
    return {str(i).strip() for i in ids if str(i).strip()}


def all_found(found: Iterable[DeadLetter], wanted: set[str] | None) -> bool:
    """Whether a scan for ``wanted`` can stop (never when it is for every dead letter)."""
    if wanted is None:
        return False
    found = list(found)
    return all(any(letter.matches({w}) for letter in found) for w in wanted)


def attempts_from(value: Any) -> int | None:
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def as_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return "" if value is None else str(value)


class Deadline:
    """A scan's time budget, so every loop over a broker ends."""

    def __init__(self, seconds: float = SCAN_SECONDS) -> None:
        self._end = time.monotonic() + seconds

    @property
    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())

    @property
    def passed(self) -> bool:
        return self.remaining <= 0
