"""The commit rule without a broker: only the acknowledged prefix of a partition commits."""

from __future__ import annotations

import pytest

from queues.backends.kafka.offsets import OffsetTracker, StaleAck


def test_commit_position_is_the_lowest_unacknowledged_offset() -> None:
    tracker = OffsetTracker()
    tracker.assigned()
    h5, h6, h7 = (tracker.fetched("t", 0, offset) for offset in (5, 6, 7))
    other = tracker.fetched("t", 1, 0)

    assert tracker.acked(h7) is None  # 5 and 6 still in flight
    assert tracker.acked(h6) is None
    assert tracker.acked(h5) == 8  # everything up to 7 is done
    tracker.committed(h5, 8)
    assert tracker.acked(h5) is None  # acking again moves nothing
    assert tracker.acked(other) == 1  # partitions are independent


def test_a_gap_holds_the_commit_back() -> None:
    tracker = OffsetTracker()
    h0, h1, h2 = (tracker.fetched("t", 0, offset) for offset in (0, 1, 2))
    assert tracker.acked(h0) == 1
    tracker.committed(h0, 1)
    assert tracker.acked(h2) is None
    assert tracker.acked(h1) == 3


def test_acks_from_before_a_rebalance_are_stale() -> None:
    tracker = OffsetTracker()
    tracker.assigned()
    before = tracker.fetched("t", 0, 0)
    tracker.revoked([("t", 0)])
    tracker.assigned()
    after = tracker.fetched("t", 0, 0)
    with pytest.raises(StaleAck):
        tracker.acked(before)
    assert tracker.acked(after) == 1
