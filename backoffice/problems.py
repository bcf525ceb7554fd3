"""How a page shows an engine's failure: the one place a ``QueueError`` becomes words.

The API turns every error into JSON in one exception handler; a page cannot answer one way for
all, because a failure is shown where the operation's answer goes (a result box, the dead-letter
list) or as a message on the next page. So pages run engine calls inside ``EngineCall``,
which catches ``QueueError`` (the reason is ``exc.message``, already worded for a person) and
lets everything else through: a broker that fails or does not answer is shown, never a 500.
"""

from __future__ import annotations

from types import TracebackType

from django.contrib import messages
from django.http import HttpRequest

from queues.errors import QueueError


class EngineCall:
    """``with EngineCall() as call: …``; afterwards ``call.ok``, or ``call.problem`` and
    ``call.error`` say what the engine answered. Given ``request`` and ``failed``, the next page
    also shows the message "``failed``: reason" (e.g. "Not deleted: …")."""

    def __init__(self, request: HttpRequest | None = None, failed: str = "") -> None:
        self.request = request
        self.failed = failed
        self.error: QueueError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def problem(self) -> str:
        return self.error.message if self.error is not None else ""

    def __enter__(self) -> EngineCall:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if not isinstance(exc, QueueError):
            return False
        self.error = exc
        if self.request is not None and self.failed:
            messages.error(self.request, f"{self.failed}: {exc.message}")
        return True
