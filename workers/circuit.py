"""A circuit breaker per named dependency, shared by every handler thread of a process.

    closed ──(failure_threshold failures in a row)──► open ──(reset_timeout)──► half-open
      ▲                                                 ▲                          │
      └──────────────── the trial call succeeds ────────┴── the trial call fails ──┘

While open, calls are refused at once with ``CircuitOpen`` (whose ``retry_after`` the retry
middleware uses as the retry delay), so a dead CRM is not hammered by every message. In
half-open one trial call goes through; the others are refused until it ends.

State is per process: each worker process learns about an outage on its own, which needs no
shared store and costs at most ``failure_threshold`` failed calls per process.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

from workers.errors import CircuitOpen

T = TypeVar("T")


class CircuitState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or reset_timeout < 0:
            raise ValueError("failure_threshold must be at least 1 and reset_timeout positive.")
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_running = False

    @property
    def state(self) -> CircuitState:
        with self._lock:
            if self._state == CircuitState.OPEN and self._remaining() <= 0:
                return CircuitState.HALF_OPEN
            return self._state

    @property
    def failures(self) -> int:
        return self._failures

    def call(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        with self:
            return fn(*args, **kwargs)

    def __enter__(self) -> CircuitBreaker:
        with self._lock:
            if self._state == CircuitState.OPEN:
                remaining = self._remaining()
                if remaining > 0:
                    raise CircuitOpen(self.name, remaining)
                self._state = CircuitState.HALF_OPEN
            if self._state == CircuitState.HALF_OPEN:
                if self._trial_running:
                    raise CircuitOpen(self.name, self.reset_timeout)
                self._trial_running = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._lock:
            trial = self._state == CircuitState.HALF_OPEN
            self._trial_running = False
            if exc_type is None:
                self._state = CircuitState.CLOSED
                self._failures = 0
                return
            self._failures += 1
            if trial or self._failures >= self.failure_threshold:
                self._state = CircuitState.OPEN
                self._opened_at = self._clock()

    def record_failure(self) -> None:
        """Count a failure seen without going through the breaker (e.g. a 5xx answer)."""
        with self._lock:
            self._failures += 1
            if self._state != CircuitState.CLOSED or self._failures >= self.failure_threshold:
                self._state = CircuitState.OPEN
                self._opened_at = self._clock()

    def reset(self) -> None:
        with self._lock:
            self._state = CircuitState.CLOSED
            self._failures = 0
            self._trial_running = False

    def _remaining(self) -> float:
        return self._opened_at + self.reset_timeout - self._clock()


class Circuits:
    """Breakers by name; the first call for a name decides its thresholds."""

    def __init__(self) -> None:
        self._breakers: dict[str, CircuitBreaker] = {}
        self._lock = threading.Lock()

    def get(
        self, name: str, *, failure_threshold: int = 5, reset_timeout: float = 30.0
    ) -> CircuitBreaker:
        with self._lock:
            breaker = self._breakers.get(name)
            if breaker is None:
                breaker = self._breakers[name] = CircuitBreaker(
                    name, failure_threshold=failure_threshold, reset_timeout=reset_timeout
                )
            return breaker

    def clear(self) -> None:
        with self._lock:
            self._breakers.clear()


#: The process's breakers (``ctx.circuit(name)``).
circuits = Circuits()
