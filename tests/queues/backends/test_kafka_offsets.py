"""The commit rule without a broker: only the acknowledged prefix of a partition commits."""

from __future__ import annotations

import pytest

from queues.backends.kafka.offsets import OffsetTracker, PartitionState, StaleAck


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


def test_a_revoke_clears_every_per_partition_state_in_one_place() -> None:
    state = PartitionState()
    state.offsets.assigned()
    kept = state.offsets.fetched("t", 1, 0)
    state.offsets.fetched("t", 0, 4)
    state.hold(("t.retry", 0), until=100.0)
    state.to_commit({("t", 0): 4, ("t", 1): 1})
    state.commit_sent(state.take_unsent(now=0.0, timeout=10.0), now=0.0)
    state.to_commit({("t", 0): 5})

    state.revoked([("t", 0), ("t.retry", 0)])

    assert state.held == {}
    assert state.last_positions() == {("t", 1): 1}
    assert state.offsets.acked(kept) == 1  # the other partition is untouched
    state.clear()
    assert state.last_positions() == {}
    assert state.commit_sent_at is None


def test_one_asynchronous_commit_in_flight_and_positions_merged_meanwhile() -> None:
    state = PartitionState()
    state.to_commit({("t", 0): 3})
    assert state.take_unsent(now=0.0, timeout=10.0) == {("t", 0): 3}
    state.commit_sent({("t", 0): 3}, now=0.0)
    state.to_commit({("t", 0): 5})
    state.to_commit({("t", 0): 4})  # never backwards
    assert state.take_unsent(now=1.0, timeout=10.0) == {}  # the first is unanswered
    unsent = state.take_unsent(now=11.0, timeout=10.0)  # the first timed out
    assert unsent == {("t", 0): 5}
    state.commit_sent(unsent, now=11.0)
    assert state.last_positions() == {("t", 0): 5}  # what a closing consumer commits


def test_held_retry_partitions_come_due() -> None:
    state = PartitionState()
    state.hold(("t.retry", 0), until=10.0)
    state.hold(("t.retry", 1), until=20.0)
    assert state.due(now=15.0) == [("t.retry", 0)]
    assert list(state.held) == [("t.retry", 1)]
