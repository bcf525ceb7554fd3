"""The circuit breaker, with a clock the test moves (no sleeping)."""

from __future__ import annotations

import pytest

from workers.circuit import CircuitBreaker, Circuits, CircuitState
from workers.errors import CircuitOpen


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fail(breaker: CircuitBreaker) -> None:
    with pytest.raises(ConnectionError), breaker:
        raise ConnectionError("crm down")


def test_it_opens_after_the_threshold_of_failures_in_a_row() -> None:
    clock = Clock()
    breaker = CircuitBreaker("crm", failure_threshold=3, reset_timeout=30, clock=clock)
    fail(breaker)
    fail(breaker)
    assert breaker.state == CircuitState.CLOSED
    fail(breaker)
    assert breaker.state == CircuitState.OPEN
    clock.now += 10
    with pytest.raises(CircuitOpen) as refused, breaker:
        pytest.fail("an open circuit let a call through")
    assert refused.value.retry_after == pytest.approx(20)


def test_a_success_resets_the_count() -> None:
    breaker = CircuitBreaker("crm", failure_threshold=2, clock=Clock())
    fail(breaker)
    assert breaker.call(lambda: "ok") == "ok"
    fail(breaker)
    assert breaker.state == CircuitState.CLOSED


def test_half_open_lets_one_trial_through_which_closes_or_reopens_it() -> None:
    clock = Clock()
    breaker = CircuitBreaker("crm", failure_threshold=1, reset_timeout=5, clock=clock)
    fail(breaker)
    clock.now += 5
    assert breaker.state == CircuitState.HALF_OPEN

    # The trial runs (outer); a second call during it is refused (inner).
    with breaker, pytest.raises(CircuitOpen), breaker:
        pytest.fail("a second call went through during the trial")
    assert breaker.state == CircuitState.CLOSED

    fail(breaker)
    clock.now += 5
    fail(breaker)  # the trial fails: open again for a full reset timeout
    assert breaker.state == CircuitState.OPEN
    clock.now += 4.9
    assert breaker.state == CircuitState.OPEN


def test_record_failure_counts_without_a_call() -> None:
    breaker = CircuitBreaker("crm", failure_threshold=2, clock=Clock())
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state == CircuitState.OPEN
    breaker.reset()
    assert breaker.state == CircuitState.CLOSED


def test_breakers_are_shared_by_name() -> None:
    circuits = Circuits()
    assert circuits.get("crm", failure_threshold=2) is circuits.get("crm")
    assert circuits.get("crm") is not circuits.get("erp")
    assert circuits.get("crm").failure_threshold == 2
