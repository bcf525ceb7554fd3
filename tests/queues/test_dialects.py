"""Per-vendor SQL: one dialect per vendor, chosen from the connection, and one back-off."""

from __future__ import annotations

import itertools

from django.db import connection

from queues.backoff import MAX_BACKOFF_SECONDS, backoff
from queues.dialects import dialect
from zstorage.dialects import dialect as zstorage_dialect


def test_the_dialect_is_the_connections_vendors_and_chosen_once() -> None:
    assert dialect().vendor == connection.vendor
    assert dialect() is dialect()
    assert zstorage_dialect().vendor == connection.vendor
    assert dialect().listens == dialect().advisory_locks == (connection.vendor == "postgresql")


def test_the_relays_backoff_starts_at_half_a_second_and_stops_at_a_minute() -> None:
    low = [backoff(n, rng=lambda: 0.0) for n in range(1, 5)]
    high = [backoff(n, rng=lambda: 1.0) for n in range(1, 5)]
    assert low == [0.25, 0.5, 1.0, 2.0]
    assert high == [0.5, 1.0, 2.0, 4.0]
    assert all(a <= b for a, b in itertools.pairwise(low))
    assert backoff(40, rng=lambda: 1.0) == MAX_BACKOFF_SECONDS
    assert MAX_BACKOFF_SECONDS / 2 <= backoff(40) <= MAX_BACKOFF_SECONDS
