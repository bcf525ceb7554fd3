"""Queue and broker exceptions. Each carries a stable ``code`` that the API returns as is.

Callers catch by meaning (``except BrokerUnavailable``: try again later), never by an engine's
own exception type: every backend translates its client's errors into these (the database
backend included: a ``DatabaseError`` leaves it as ``BrokerUnavailable``). A leaf module: it
imports nothing of the project.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol


class Published(Protocol):
    """What ``PublishFailed`` keeps of each accepted message (a ``queues.messages``
    ``PublishResult``; a Protocol so that this module stays at the bottom)."""

    @property
    def message_id(self) -> str: ...

    def as_response(self) -> dict[str, Any]: ...


class QueueError(Exception):
    code = "queue_error"
    status = 400
    #: What an API answer says instead of ``message`` to anyone but an admin, when the message
    #: carries an engine's words (its host, the driver's error): None shows the message.
    public_detail: str | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BrokerUnavailable(QueueError):
    """The engine did not answer in time or refused the connection: retry later."""

    code = "broker_unavailable"
    status = 503
    public_detail = "The queue's broker is unavailable; try again later."


class QueueMissing(QueueError):
    """The queue (or topic) does not exist on the engine: provision it first."""

    code = "queue_missing"
    status = 404
    public_detail = "The queue does not exist on its broker yet; an admin must provision it."


class MessageTooLarge(QueueError):
    """A message exceeds the engine's limit. Raised before anything of the batch is sent."""

    code = "message_too_large"
    status = 413

    def __init__(self, message_id: str, size: int, limit: int, engine: str) -> None:
        super().__init__(
            f"Message {message_id} is {size} bytes; {engine} accepts at most {limit} bytes. "
            "Nothing of the batch was published."
        )
        self.message_id = message_id
        self.size = size
        self.limit = limit


class UnknownHandler(QueueError):
    """A published message names a handler no module of this deployment registers (and its
    queue's allowed handlers do not name it as one that runs on workers elsewhere)."""

    code = "unknown_handler"


class HandlerNotAllowed(QueueError):
    """A message names a handler outside its queue's allow-list (``Queue.allowed_handlers``)."""

    code = "handler_not_allowed"
    status = 403


class BadConfiguration(QueueError):
    """The queue's settings or credentials are refused by the engine (or are incomplete)."""

    code = "bad_configuration"
    public_detail = "The broker refused the queue's configuration; an admin must check it."


class BadMessage(QueueError):
    """A message the engine cannot carry for a reason other than size (e.g. too many headers)."""

    code = "bad_message"


class QueueInUse(QueueError):
    """A queue still has rows pointing at it (messages, links, runs…) and cannot be deleted.
    ``errors`` maps each kind of row in the way to a phrase saying how many."""

    code = "queue_in_use"
    status = 409

    def __init__(self, message: str, errors: Mapping[str, list[str]]) -> None:
        super().__init__(message)
        self.errors = dict(errors)


class PublishFailed(QueueError):
    """Some messages of a batch were refused after others were accepted.

    ``published`` holds the accepted ones, ``failed`` maps a message id to the engine's reason.
    Publishing is at least once: sending the whole batch again is safe for the outbox.
    """

    code = "publish_failed"
    status = 502
    public_detail = (
        "The broker refused some messages of the batch; sending the whole batch again is safe."
    )

    def __init__(
        self, published: Sequence[Published], failed: Mapping[str, str], message: str = ""
    ) -> None:
        super().__init__(
            message
            or f"{len(failed)} message(s) of the batch were refused: "
            + "; ".join(f"{mid}: {why}" for mid, why in failed.items())
        )
        #: The accepted ones: ``queues.messages.PublishResult`` values.
        self.published: list[Any] = list(published)
        self.failed = dict(failed)


class LeaseLost(QueueError):
    """The delivery's lease is no longer ours (it expired and someone else may hold it)."""

    code = "lease_lost"
    status = 409


class DeadLetterNotFound(QueueError):
    """No dead letter with that key (it was sent back or deleted meanwhile)."""

    code = "dead_letter_not_found"
    status = 404
