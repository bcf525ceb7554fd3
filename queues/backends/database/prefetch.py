"""A worker's prefetch buffer for the database queue: claim a batch, hand it out as asked.

The worker asks ``fetch`` for as many messages as it has free handler slots: one at a time at
concurrency 1, and often one to three at concurrency 10 as handlers finish one by one. A claim
per such fetch costs a round trip (and on SQLite the write lock) for one to three rows, which
is most of a quick handler's cost. Once ``DatabaseBackend.prepare`` told it the worker's
concurrency, the backend claims ``batch`` rows at once and keeps what was not asked for here,
as RabbitMQ keeps its ``basic.qos`` of 2N (``Backend.prepare``).

Only while handlers are quick: a claim takes a batch only when the worker came back for more
within ``QUICK_SECONDS`` of the previous hand-out. Slow handlers, or a worker whose handlers
are all busy, get exactly what they ask for: rows are not held away from the queue's other
consumers while this one's handlers are busy, and the worker's bound (no more fetched than its
concurrency) holds whenever a handler takes longer than that.

What it keeps is leased to this consumer like any claimed row, so the guarantees hold:

* At least once: a buffered row is in flight under its claim's token; if the process dies
  (SIGKILL) its lease ends and it is claimed again, by anyone.
* Leases: a row handed out later than a quarter of the visibility timeout after its claim has
  its lease renewed first (the buffer's rows in one statement; a row whose lease was lost
  meanwhile is dropped, it belongs to another consumer now), so the worker's lease extension,
  which counts from the hand-out, always comes before the lease ends.
* Closing gives the buffer back at once (ready, and the attempt its claim counted taken back:
  no handler saw it).
* Order: rows are handed out in the claim's order (priority, then id); a message of higher
  priority published after a claim waits for the buffer to drain (at most ``batch`` rows of
  quick handlers), as it waits behind RabbitMQ's prefetch.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterable

from queues.backends.database.claim import DatabaseHandle, release_leased, renew_leased
from queues.messages import Delivery

#: The fewest rows a prepared backend claims at once (concurrency 1 included).
MIN_BATCH = 10
#: A worker back for more within this long of the previous hand-out has quick handlers.
QUICK_SECONDS = 0.05


class Prefetch:
    """Claimed deliveries not yet handed out, oldest claim first."""

    def __init__(self, queue_id: int, visibility_timeout: int) -> None:
        self.queue_id = queue_id
        self.visibility_timeout = visibility_timeout
        #: Rows a claim may take (0: no buffering, the backend claims what fetch asks).
        self.batch = 0
        self._held: list[tuple[float, Delivery]] = []
        self._handed_out_at = float("-inf")

    def prepare(self, concurrency: int) -> None:
        self.batch = max(2 * concurrency, MIN_BATCH)

    def __len__(self) -> int:
        return len(self._held)

    def claim_size(self, wanted: int) -> int:
        """How many rows the next claim takes: a batch while handlers are quick."""
        if time.monotonic() - self._handed_out_at < QUICK_SECONDS:
            return max(wanted, self.batch)
        return wanted

    def hand_out(self, claimed: list[Delivery], wanted: int) -> list[Delivery]:
        """The first ``wanted`` of a claim's deliveries; the others are kept."""
        now = time.monotonic()
        self._held.extend((now, delivery) for delivery in claimed[wanted:])
        if claimed:
            self._handed_out_at = now
        return claimed[:wanted]

    def take(self, count: int) -> list[Delivery]:
        """Up to ``count`` kept deliveries, their leases renewed first when they are old."""
        if self._held and time.monotonic() - self._held[0][0] > self.visibility_timeout / 4:
            self._renew()
        taken, self._held = self._held[:count], self._held[count:]
        if taken:
            self._handed_out_at = time.monotonic()
        return [delivery for _, delivery in taken]

    def release(self) -> None:
        """Give every kept row back (closing); on an error they come back when their lease
        ends."""
        held, self._held = self._held, []
        with contextlib.suppress(Exception):
            release_leased(self.queue_id, _tokens(d for _, d in held))

    def _renew(self) -> None:
        kept = renew_leased(
            self.queue_id, _tokens(d for _, d in self._held), self.visibility_timeout
        )
        now = time.monotonic()
        self._held = [(now, d) for _, d in self._held if _handle(d).row_id in kept]


def _handle(delivery: Delivery) -> DatabaseHandle:
    handle = delivery.handle
    if not isinstance(handle, DatabaseHandle):
        raise TypeError("A database queue's prefetch holds only its own deliveries.")
    return handle


def _tokens(deliveries: Iterable[Delivery]) -> dict[int, uuid.UUID]:
    handles = [_handle(d) for d in deliveries]
    return {h.row_id: h.lease_token for h in handles}
