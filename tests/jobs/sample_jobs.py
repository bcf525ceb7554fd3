"""Jobs the tests run. Each records its calls so a test can check "exactly once"."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from jobs.context import JobContext
from jobs.registry import job


class Calls:
    """Calls per instance, how many ran at once at most, and a barrier for the first wave."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.per_instance: Counter[str] = Counter()
        self.running = 0
        self.most_at_once = 0
        self.first_wave: threading.Barrier | None = None

    def reset(self, first_wave: int = 0) -> None:
        with self.lock:
            self.per_instance.clear()
            self.running = 0
            self.most_at_once = 0
            self.first_wave = threading.Barrier(first_wave, timeout=20) if first_wave else None


calls = Calls()


@job("tests.square")
def square(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Square ``n``; raise when ``fail`` is set."""
    with calls.lock:
        calls.per_instance[ctx.instance_id] += 1
        calls.running += 1
        calls.most_at_once = max(calls.most_at_once, calls.running)
        barrier = (
            calls.first_wave if params["n"] < (calls.first_wave or _NoBarrier).parties else None
        )
    try:
        if barrier is not None:
            barrier.wait()  # the first wave is in flight together: the limit is reachable
        if params.get("fail"):
            raise ValueError(f"instance {params['n']} always fails")
        ctx.progress(1, 1, "squared")
        return {"square": params["n"] ** 2}
    finally:
        with calls.lock:
            calls.running -= 1


class _NoBarrier:
    parties = 0
