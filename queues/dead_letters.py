"""Dead letters: what every engine shows an admin, and the service calls the pages use.

Each backend reads its own dead-letter queue with its own client (``Backend.dead_letters``,
``redrive``, ``delete_dead_letter``); this module holds what they share — the ``DeadLetter``
value, how a reason and an attempt count are read back from our reserved headers, how an
admin's choice of messages is matched — and the calls the back-office makes.

Keys. A dead letter is acted on by its ``key``: the engine's handle for that one copy (the
DLQ copy's SQS MessageId, Kafka's ``<partition>-<offset>``, our message id on RabbitMQ and the
database queue). The backends also accept our message id, which then means every copy of it:
at-least-once dead-lettering can leave two copies of one message, and "send message X back"
should not leave one behind.

Scans are bounded: a broker's DLQ is read for at most ``SCAN_SECONDS`` and ``SCAN_LIMIT``
messages per call, so a huge dead-letter queue makes a page incomplete, never hung.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from queues.backends import get_backend
from queues.backends.base import HEADER_PREFIX, Backend
from queues.errors import QueueError
from queues.models import Queue, QueueType

#: Longest a dead-letter scan (peek, redrive, delete) reads a broker's DLQ.
SCAN_SECONDS = 15.0
#: Most dead letters one scan reads; "send back all" beyond this needs another click.
SCAN_LIMIT = 5000
#: Longest body the pages show in the list.
PREVIEW_CHARS = 120


class DeadLetterNotFound(QueueError):
    """No dead letter with that key (it was sent back or deleted meanwhile)."""

    code = "dead_letter_not_found"
    status = 404


@dataclass(frozen=True)
class DeadLetter:
    """One message in a dead-letter queue, as the engine holds it.

    ``attempts`` is None where the engine did not record it. ``at`` is when this copy entered
    the dead-letter queue, where the engine says so (Kafka's record time, SQS's sent time of a
    copy a worker dead-lettered); None otherwise. ``origin`` names the copy in the engine's
    own terms, for an admin who wants to find it with the engine's tools.
    """

    key: str
    message_id: str
    body: bytes
    reason: str
    attempts: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    ordering_key: str | None = None
    at: datetime | None = None
    origin: str = ""

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    @property
    def preview(self) -> str:
        text = " ".join(self.text.split())
        return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"

    @property
    def pretty(self) -> str:
        """The body indented when it is JSON, as it is otherwise."""
        try:
            return json.dumps(json.loads(self.body), indent=2, ensure_ascii=False)
        except ValueError:
            return self.text

    @property
    def handler(self) -> str:
        """The handler the message asked for, when its body is a JSON object naming one."""
        try:
            body = json.loads(self.body)
        except ValueError:
            return ""
        handler = body.get("handler") if isinstance(body, dict) else None
        return handler if isinstance(handler, str) else ""

    def matches(self, wanted: set[str] | None) -> bool:
        return wanted is None or self.key in wanted or self.message_id in wanted


# -- what the backends share ------------------------------------------------------------------


def wanted_set(ids: Iterable[str] | None) -> set[str] | None:
    """None means every dead letter; an empty selection means none (not all)."""
    if ids is None:
        return None
    return {str(i).strip() for i in ids if str(i).strip()}


def user_headers(headers: Mapping[str, Any]) -> dict[str, str]:
    """The message's own headers: ours (``quaymaster-*``) and the engine's (``x-*``) dropped."""
    return {
        str(k): str(v)
        for k, v in headers.items()
        if isinstance(v, str | bytes) and not str(k).lower().startswith((HEADER_PREFIX, "x-"))
    }


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


def all_found(found: Iterable[DeadLetter], wanted: set[str] | None) -> bool:
    """Whether a scan for ``wanted`` can stop (never when it is for every dead letter)."""
    if wanted is None:
        return False
    found = list(found)
    return all(any(letter.matches({w}) for letter in found) for w in wanted)


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


# -- what the back-office calls -----------------------------------------------------------------


@contextlib.contextmanager
def _backend(queue: Queue) -> Iterator[Backend]:
    backend = get_backend(queue)
    try:
        yield backend
    finally:
        backend.close()


@contextlib.contextmanager
def _one_admin_at_a_time(queue: Queue) -> Iterator[None]:
    """Kafka keeps which dead letters are settled in a committed offset and its metadata: a
    read-modify-write that two admins at once could interleave (one's marks lost, the message
    shown again). A row lock on the queue serialises them on PostgreSQL. Other engines settle
    each message atomically on the engine, and no transaction is held over their I/O."""
    if queue.type != QueueType.KAFKA or connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic():
        list(Queue.objects.select_for_update().filter(pk=queue.pk).values_list("pk"))
        yield


def list_dead_letters(queue: Queue, limit: int = 50) -> list[DeadLetter]:
    with _backend(queue) as backend:
        return backend.dead_letters(limit=limit)


def find_dead_letter(queue: Queue, key: str) -> DeadLetter:
    with _backend(queue) as backend:
        found = backend.dead_letters(limit=1, keys=[key])
    if not found:
        raise DeadLetterNotFound(f"No dead letter {key!r} in queue {queue.name!r}.")
    return found[0]


def redrive(queue: Queue, keys: Iterable[str] | None = None) -> int:
    """Send dead letters back to the queue (all of them when ``keys`` is None) with their
    attempt count reset; returns how many were sent back."""
    with _one_admin_at_a_time(queue), _backend(queue) as backend:
        return backend.redrive(None if keys is None else list(keys))


def delete_dead_letter(queue: Queue, key: str) -> None:
    with _one_admin_at_a_time(queue), _backend(queue) as backend:
        if not backend.delete_dead_letter(key):
            raise DeadLetterNotFound(f"No dead letter {key!r} in queue {queue.name!r}.")
