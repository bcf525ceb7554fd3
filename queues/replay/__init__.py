"""Replay from the source of truth: a link's records sent again as ``replay`` events.

An admin picks a table link and a set of its records (a query-language filter, ids, changed
between two times), previews the count and starts a replay: the current version of each
record goes to the outbox as ``{"event": "replay", "replay_id": …}`` with the link's handler,
in record id order, at most ``rate`` records a second, and the relay publishes it like any
record event. ``service`` starts, previews and cancels (audited); ``driver`` runs it in
chunks, each one transaction with its cursor (resumable, cancellable); ``selection`` walks
the records by keyset pages.
"""

from queues.models.replay import Replay, ReplayState
from queues.replay.errors import InvalidReplay, ReplayEnded, ReplayNotFound, ReplayTooLarge

__all__ = [
    "InvalidReplay",
    "Replay",
    "ReplayEnded",
    "ReplayNotFound",
    "ReplayState",
    "ReplayTooLarge",
]
