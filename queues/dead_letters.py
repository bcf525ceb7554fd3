"""Dead letters: the service calls the back-office makes to read, send back (as they are, or
edited: another body, another handler) and delete them.

Each backend reads its own dead-letter queue with its own client (``Backend.dead_letters``,
``redrive``, ``delete_dead_letter``); the ``DeadLetter`` value is in ``queues.messages`` and
what the engines' scans share (keys, matching, bounds) in ``queues.backends.scan``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit import trail
from queues.backends import backend_class, get_backend
from queues.dialects import dialect
from queues.errors import BadMessage, DeadLetterNotFound
from queues.messages import DeadLetter, OutgoingMessage
from queues.models import Queue
from queues.services import check_handlers

__all__ = [
    "DeadLetter",
    "DeadLetterNotFound",
    "delete_dead_letter",
    "find_dead_letter",
    "list_dead_letters",
    "redrive",
    "send_back_edited",
    "send_back_with_handler",
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
    wanted = None if keys is None else list(keys)
    with _one_admin_at_a_time(queue), get_backend(queue) as backend:
        moved = backend.redrive(wanted)
    every = "all" if wanted is None else wanted
    trail.record("dead_letter.send_back", queue, details={"keys": every, "sent_back": moved})
    return moved


def delete_dead_letter(queue: Queue, key: str) -> None:
    with _one_admin_at_a_time(queue), get_backend(queue) as backend:
        if not backend.delete_dead_letter(key):
            raise DeadLetterNotFound(f"No dead letter {key!r} in queue {queue.name!r}.")
    trail.record("dead_letter.delete", queue, details={"keys": [key]})


#: Headers an edited send-back carries, so the message says it was changed and by whom (a page
#: showing the message, or its dead letter if it fails again, lists them).
EDITED_BY = "edited-by"
EDITED_AT = "edited-at"
EDITED_FROM_HANDLER = "edited-from-handler"
EDITED_FROM_MESSAGE = "edited-from-message-id"


def _body_of(letter: DeadLetter) -> dict[str, Any]:
    try:
        body = json.loads(letter.body)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise BadMessage(
            f"Dead letter {letter.message_id} is not a JSON object: edit its whole body instead."
        )
    return body


def _edited(letter: DeadLetter, body: Mapping[str, Any], editor: str) -> OutgoingMessage:
    """The edited copy: a message id of its own (an engine that deduplicates by id, as SQS
    FIFO queues do for five minutes, would drop it otherwise), the dead letter's ordering key,
    and headers saying who changed what."""
    headers = {
        **letter.headers,
        EDITED_BY: editor,
        EDITED_AT: timezone.now().isoformat(),
        EDITED_FROM_MESSAGE: letter.message_id,
    }
    if letter.handler != body["handler"]:
        headers[EDITED_FROM_HANDLER] = letter.handler or "(none)"
    return OutgoingMessage.new(dict(body), letter.ordering_key, headers)


def _send_back(
    queue: Queue, edits: Sequence[tuple[DeadLetter, Mapping[str, Any]]], editor: str
) -> int:
    """Publish the edited copies, then delete their dead letters (at least once: a failure in
    between leaves a dead letter whose copy is already back on the queue)."""
    for _, body in edits:
        handler = body.get("handler")
        if not isinstance(handler, str) or not handler.strip():
            raise BadMessage(
                "The message needs a 'handler': the name of the handler to run, as text."
            )
    check_handlers(queue, [body["handler"] for _, body in edits])
    if not edits:
        return 0
    with _one_admin_at_a_time(queue), get_backend(queue) as backend:
        backend.publish([_edited(letter, body, editor) for letter, body in edits])
        for letter, _ in edits:
            backend.delete_dead_letter(letter.key)
    trail.record(
        "dead_letter.send_back",
        queue,
        details={
            "keys": [letter.key for letter, _ in edits],
            "edited_by": editor,
            "handlers": sorted({str(body["handler"]) for _, body in edits}),
        },
        after={"bodies": [dict(body) for _, body in edits]} if len(edits) == 1 else None,
    )
    return len(edits)


def send_back_edited(queue: Queue, key: str, body: Mapping[str, Any], *, editor: str) -> None:
    """Send dead letter ``key`` back with ``body`` instead of its own (attempts start again),
    recorded in its headers as edited by ``editor`` from that message."""
    _send_back(queue, [(find_dead_letter(queue, key), body)], editor)


def send_back_with_handler(queue: Queue, keys: Iterable[str], handler: str, *, editor: str) -> int:
    """Send the dead letters ``keys`` back naming ``handler`` instead of their own; how many
    were sent back (those gone meanwhile are skipped). Refused whole (``BadMessage``) if one
    is not a JSON object."""
    wanted = list(keys)
    if not wanted:
        return 0
    with get_backend(queue) as backend:
        letters = backend.dead_letters(limit=len(wanted), keys=wanted)
    edits = [(letter, {**_body_of(letter), "handler": handler}) for letter in letters]
    return _send_back(queue, edits, editor)
