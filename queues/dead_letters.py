"""Dead letters: the service calls the back-office makes to read, send back and delete them.

Each backend reads its own dead-letter queue with its own client (``Backend.dead_letters``,
``redrive``, ``delete_dead_letter``); the ``DeadLetter`` value is in ``queues.messages`` and
what the engines' scans share (keys, matching, bounds) in ``queues.backends.scan``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from django.db import transaction

from queues.backends import backend_class, get_backend
from queues.dialects import dialect
from queues.errors import DeadLetterNotFound
from queues.messages import DeadLetter
from queues.models import Queue

__all__ = [
    "DeadLetter",
    "DeadLetterNotFound",
    "delete_dead_letter",
    "find_dead_letter",
    "list_dead_letters",
    "redrive",
]


@contextlib.contextmanager
def _one_admin_at_a_time(queue: Queue) -> Iterator[None]:
    """Where the engine's dead-letter administration is a read-modify-write that two admins at
    once could interleave (``Backend.serialise_admin``: Kafka keeps which dead letters are
    settled in a committed offset and its metadata, so one's marks could be lost and the
    message shown again), a row lock on the queue serialises them on PostgreSQL. Other engines
    settle each message atomically on the engine, and no transaction is held over their I/O."""
    if not backend_class(queue.type).serialise_admin or not dialect().row_locks:
        yield
        return
    with transaction.atomic():
        list(Queue.objects.select_for_update().filter(pk=queue.pk).values_list("pk"))
        yield


def list_dead_letters(queue: Queue, limit: int = 50) -> list[DeadLetter]:
    with get_backend(queue) as backend:
        return backend.dead_letters(limit=limit)


def find_dead_letter(queue: Queue, key: str) -> DeadLetter:
    with get_backend(queue) as backend:
        found = backend.dead_letters(limit=1, keys=[key])
    if not found:
        raise DeadLetterNotFound(f"No dead letter {key!r} in queue {queue.name!r}.")
    return found[0]


def redrive(queue: Queue, keys: Iterable[str] | None = None) -> int:
    """Send dead letters back to the queue (all of them when ``keys`` is None) with their
    attempt count reset; returns how many were sent back."""
    with _one_admin_at_a_time(queue), get_backend(queue) as backend:
        return backend.redrive(None if keys is None else list(keys))


def delete_dead_letter(queue: Queue, key: str) -> None:
    with _one_admin_at_a_time(queue), get_backend(queue) as backend:
        if not backend.delete_dead_letter(key):
            raise DeadLetterNotFound(f"No dead letter {key!r} in queue {queue.name!r}.")
