"""Small tools of the worker tests: publishing, recording handler calls, reading the log."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from queues.backends import get_backend
from queues.messages import OutgoingMessage
from queues.models import Queue
from tests.queues.helpers import wait_for
from workers.context import Context
from workers.models import LifecycleEvent

__all__ = ["FAST", "Call", "Recorder", "events", "publish", "wait_for"]

#: Small numbers so retries, leases and drains happen within a test's patience.
FAST = {
    "poll_seconds": 0.5,
    "busy_poll_seconds": 0.05,
    "retry_base_delay": 0.3,
    "retry_max_delay": 2.0,
    "heartbeat_seconds": 0.5,
    "drain_seconds": 5.0,
}


def publish(queue: Queue, *bodies: Mapping[str, Any] | bytes, keyed: bool = False) -> list[str]:
    """Publish each body (a JSON object, or raw bytes) and return the message ids. ``keyed``
    gives each message an ordering key of its own (Kafka then spreads them over partitions;
    without keys librdkafka's sticky partitioner sends a burst to one partition)."""
    messages = [
        OutgoingMessage(
            str(uuid.uuid4()),
            body if isinstance(body, bytes) else dict(body),
            ordering_key=f"key-{index}" if keyed else None,
        )
        for index, body in enumerate(bodies)
    ]
    with get_backend(queue) as backend:
        backend.publish(messages)
    return [m.message_id for m in messages]


@dataclass
class Call:
    message: dict[str, Any]
    message_id: str
    attempt: int
    at: float
    thread: str


@dataclass
class Recorder:
    """Handler calls as they happen, and a way to wait for them without sleeping."""

    calls: list[Call] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def record(self, message: dict[str, Any], ctx: Context) -> Call:
        call = Call(
            message, ctx.message_id, ctx.attempt, time.monotonic(), threading.current_thread().name
        )
        with self._changed:
            self.calls.append(call)
            self._changed.notify_all()
        return call

    def wait(self, predicate: Callable[[list[Call]], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self.calls):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    pytest.fail(f"timed out after {timeout}s waiting for {what}; got {self.calls}")
                self._changed.wait(remaining)

    def wait_count(self, count: int, timeout: float = 20.0) -> list[Call]:
        self.wait(lambda calls: len(calls) >= count, timeout, f"{count} handler call(s)")
        return list(self.calls)


def holds_for(probe: Callable[[], bool], seconds: float, what: str) -> None:
    """A negative property: ``probe`` stays true for ``seconds`` (something must not happen;
    only a bounded watch can show that)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert probe(), f"{what} stopped holding"
        time.sleep(0.02)  # a pause between probes


def events(queue: Queue, **filters: Any) -> list[LifecycleEvent]:
    return list(LifecycleEvent.objects.filter(queue=queue.name, **filters).order_by("id"))


def wait_for_events(queue: Queue, count: int, timeout: float = 20.0, **filters: Any) -> list[Any]:
    """Lifecycle events are written in batches by a thread: wait until ``count`` are there."""
    return wait_for(
        lambda: (found := events(queue, **filters)) and len(found) >= count and found,
        timeout,
        f"{count} lifecycle event(s) {filters}",
    )
