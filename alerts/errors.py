"""The alerts app's one exception hierarchy."""

from __future__ import annotations


class AlertError(Exception):
    """Base of the alerts app's errors."""


class InvalidRule(AlertError):
    """A rule that cannot be saved: ``errors`` maps an input (a parameter's name, "kind",
    "queue", "job", "notify_emails") to its messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(m for messages in errors.values() for m in messages))
        self.errors = errors


class UnknownCondition(AlertError):
    """A rule names a condition kind no module registers (any more)."""


class NotificationFailed(AlertError):
    """One channel could not deliver a notification; ``channel`` and the reason."""

    def __init__(self, channel: str, reason: str) -> None:
        super().__init__(f"{channel}: {reason}")
        self.channel = channel
        self.reason = reason
