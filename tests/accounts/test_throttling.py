"""The API's rate limit: a sliding window over two fixed-window counts."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache

from accounts.throttling import TokenRateThrottle


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Anonymous:
    auth = None
    user = None
    META = {"REMOTE_ADDR": "192.0.2.7"}
    headers: dict[str, str] = {}


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Any:
    cache.clear()
    clock = Clock(600_000.0)  # the start of a minute window
    monkeypatch.setattr(TokenRateThrottle, "timer", clock)
    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", {"token": "10/min"})
    yield clock
    cache.clear()


def allowed(n: int) -> list[bool]:
    return [TokenRateThrottle().allow_request(Anonymous(), None) for _ in range(n)]  # type: ignore[arg-type]


def test_the_limit_holds_within_a_window_and_refusals_are_not_counted(clock: Clock):
    assert allowed(12) == [True] * 10 + [False] * 2
    clock.now += 59
    assert allowed(1) == [False]


def test_the_previous_window_weighs_in_as_it_slides_out(clock: Clock):
    assert all(allowed(10))
    clock.now += 60  # the next window begins: the previous ten still count in full
    assert allowed(1) == [False]
    clock.now += 30  # half of the previous window has slid out: 5 counted, room for 5
    assert allowed(6) == [True] * 5 + [False]
    clock.now += 30  # a fresh window; the previous (5 requests) counts in full
    assert allowed(6) == [True] * 5 + [False]


def test_wait_says_when_a_request_would_pass_again(clock: Clock):
    allowed(10)
    throttle = TokenRateThrottle()
    assert not throttle.allow_request(Anonymous(), None)  # type: ignore[arg-type]
    wait = throttle.wait()
    assert wait is not None
    clock.now += wait + 0.01
    assert allowed(1) == [True]
