"""What the API, the back-office and the relay call: one path for every queue operation."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from django.db import transaction

from queues.backends import get_backend
from queues.backends.base import Backend, CheckResult, OutgoingMessage, PublishResult, QueueStats
from queues.models import Queue


def create_queue(*, secret: str = "", **fields: Any) -> Queue:
    """Validate (``full_clean``: raises ValidationError) and save a queue; ``secret`` is
    encrypted before it touches the database."""
    queue = Queue(**fields)
    queue.set_secret(secret)
    queue.full_clean()
    queue.save()
    return queue


def update_queue(queue: Queue, *, secret: str | None = None, **fields: Any) -> Queue:
    """Change fields; ``secret=None`` keeps the stored secret, ``""`` clears it."""
    for name, value in fields.items():
        setattr(queue, name, value)
    if secret is not None:
        queue.set_secret(secret)
    queue.full_clean()
    queue.save()
    return queue


def resolve_queue(id_or_name: int | str) -> Queue:
    """The queue with this primary key or name (``Queue.DoesNotExist`` otherwise). A digits-only
    string is tried as an id first, then as a name."""
    if isinstance(id_or_name, int):
        return Queue.objects.get(pk=id_or_name)
    if id_or_name.isdigit():
        with contextlib.suppress(Queue.DoesNotExist):
            return Queue.objects.get(pk=int(id_or_name))
    return Queue.objects.get(name=id_or_name)


@contextlib.contextmanager
def backend_for(queue: Queue) -> Iterator[Backend]:
    backend = get_backend(queue)
    try:
        yield backend
    finally:
        backend.close()


def provision(queue: Queue) -> None:
    with backend_for(queue) as backend:
        backend.provision()


def check_connection(queue: Queue) -> CheckResult:
    with backend_for(queue) as backend:
        return backend.check()


def queue_stats(queue: Queue) -> QueueStats:
    with backend_for(queue) as backend:
        return backend.stats()


def as_outgoing(message: OutgoingMessage | Mapping[str, Any]) -> OutgoingMessage:
    """A JSON object becomes a message with a fresh id; an OutgoingMessage stays as it is."""
    if isinstance(message, OutgoingMessage):
        return message
    return OutgoingMessage(str(uuid.uuid4()), dict(message))


def publish(
    queue: Queue, messages: Sequence[OutgoingMessage | Mapping[str, Any]]
) -> list[PublishResult]:
    """Publish a batch with a short-lived backend. Database queues insert in the caller's
    transaction (atomic on their own otherwise); the relay keeps its own backend instead."""
    outgoing = [as_outgoing(m) for m in messages]
    with backend_for(queue) as backend, transaction.atomic():
        return backend.publish(outgoing)
