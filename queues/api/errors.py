"""Publish API errors, each with a stable ``code`` (see the README's table)."""

from __future__ import annotations

from collections.abc import Mapping

from queues.errors import QueueError


class NotAnObject(QueueError):
    code = "not_an_object"


class MissingHandler(QueueError):
    code = "missing_handler"


class InvalidBatch(QueueError):
    """Some messages of a batch are invalid; nothing was published. ``errors``: index → reasons."""

    code = "invalid_batch"

    def __init__(self, errors: Mapping[int, list[str]]) -> None:
        super().__init__("Nothing was published: some messages are invalid.")
        self.errors = dict(errors)


class QueueNotFound(QueueError):
    code = "queue_not_found"
    status = 404


class QueueDisabled(QueueError):
    code = "queue_disabled"
    status = 409


class QueueForbidden(QueueError):
    code = "permission_denied"
    status = 403


class InvalidIdempotencyKey(QueueError):
    code = "invalid_idempotency_key"


class IdempotencyInProgress(QueueError):
    code = "idempotency_in_progress"
    status = 409


class IdempotencyMismatch(QueueError):
    code = "idempotency_key_reused"
    status = 422
