"""Replay refusals, in the queues app's one hierarchy (``queues.errors.QueueError``)."""

from __future__ import annotations

from collections.abc import Mapping

from queues.errors import QueueError


class InvalidReplay(QueueError):
    """The link, the selection or the rate was refused; ``errors``: field → reasons."""

    code = "invalid_replay"

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        super().__init__(
            "Nothing was started: "
            + "; ".join(f"{key}: {' '.join(reasons)}" for key, reasons in errors.items())
        )
        self.errors = dict(errors)


class ReplayTooLarge(QueueError):
    code = "replay_too_large"

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(
            f"The selection holds more than the {limit:,} records one replay may send "
            "(QUAYMASTER_REPLAY_MAX_RECORDS): narrow it, or replay it in parts."
        )
        self.count = count
        self.limit = limit


class ReplayNotFound(QueueError):
    code = "replay_not_found"
    status = 404


class ReplayEnded(QueueError):
    """Cancelling a replay that already ended."""

    code = "replay_ended"
    status = 409
