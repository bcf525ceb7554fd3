"""Waiting without sleeping: poll a condition, or a backend's fetch, against a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

from queues.backends.base import Backend
from queues.messages import Delivery

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    """Call ``probe`` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)  # a pause between probes, not the synchronisation itself


def fetch_n(backend: Backend, count: int, timeout: float = 15.0) -> list[Delivery]:
    """Fetch until ``count`` deliveries arrived; each fetch waits for messages itself."""
    deadline = time.monotonic() + timeout
    got: list[Delivery] = []
    while len(got) < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"fetched {len(got)} of {count} message(s) in {timeout}s")
        got.extend(backend.fetch(max_messages=count - len(got), wait_seconds=min(1.0, remaining)))
    return got


def fetch_nothing(backend: Backend, wait_seconds: float = 0.3) -> None:
    got = backend.fetch(max_messages=10, wait_seconds=wait_seconds)
    assert got == [], f"expected nothing, fetched {[d.message_id for d in got]}"
