"""The workers' exceptions, one hierarchy that callers catch by meaning (as Dramatiq's errors).

``Retry`` and ``CircuitOpen`` are raised *by handlers* to ask for another attempt later;
``Permanent`` errors (a malformed message, an unknown handler) are never retried: the message
goes to the dead-letter queue at once.
"""

from __future__ import annotations


class WorkerError(Exception):
    """Base class of everything the workers app raises."""


class Permanent(WorkerError):
    """Retrying cannot help: the message is dead-lettered on its first failure."""


class MalformedMessage(Permanent):
    """The message cannot be handled as it is: not a JSON object with a string ``handler``,
    or missing (or carrying) what its handler needs (or refuses), e.g. a webhook endpoint
    its queue may not use."""


class HandlerNotFound(Permanent):
    """No handler is registered under the name the message asks for."""

    def __init__(self, name: str) -> None:
        super().__init__(f"No handler is registered under the name {name!r}.")
        self.name = name


class HandlerAlreadyRegistered(WorkerError):
    """Two different functions claim the same handler name."""


class AlreadySettled(WorkerError):
    """``ctx.ack()``, ``ctx.retry()`` or ``ctx.dead_letter()`` was called a second time."""


class Retry(WorkerError):
    """Raised by a handler: deliver the message again in ``delay`` seconds (``None``: the
    worker's exponential backoff). Counts as a failed attempt."""

    def __init__(self, delay: float | None = None, message: str = "") -> None:
        super().__init__(message or "The handler asked to be retried.")
        self.delay = delay


class CircuitOpen(WorkerError):
    """A circuit breaker refused the call; the message is retried after ``retry_after``."""

    def __init__(self, name: str, retry_after: float) -> None:
        super().__init__(f"Circuit {name!r} is open; try again in {retry_after:.1f}s.")
        self.name = name
        self.retry_after = retry_after


class LockTimeout(WorkerError):
    """``ctx.lock(name)`` could not be taken within its timeout."""

    def __init__(self, name: str, timeout: float) -> None:
        super().__init__(f"Lock {name!r} was not acquired within {timeout}s.")
        self.name = name
        self.timeout = timeout


class AddressRefused(Permanent):
    """The webhook's host is, or resolves to, an address that is not public and not inside
    ``QUAYMASTER_WEBHOOK_ALLOWED_NETWORKS``. Retrying cannot help."""


class WebhookFailed(WorkerError):
    """The webhook answered with a non-2xx status (or not at all); the message is retried.
    ``target`` names where it went (an endpoint and its host, or a host)."""

    def __init__(self, target: str, detail: str) -> None:
        super().__init__(f"Webhook {target}: {detail}")
        self.target = target


class SideEffectRefused(WorkerError):
    """A dry run (``workers.sandbox``) refused an effect no transaction can undo (an HTTP
    request, an email), at the handler's ``ctx.outbound.check``: nothing was sent."""


class DryRunBusy(WorkerError):
    """Too many dry runs are running in this process (a handler that overran its time bound
    keeps its slot until it returns): try again later."""

    code = "dry_run_busy"
    status = 503
