"""One back-off for every "try again later": the relay's postponed batches and the worker's
retried messages.

Attempt ``n`` waits ``b/2 + U(0, b/2)`` seconds with ``b = min(maximum, base * 2**(n-1))``
("equal jitter"): callers that failed together spread out, and the delay never shrinks from
one attempt to the next. The defaults are the relay's (0.5 s, 1 s, 2 s … 60 s); the worker's
retry middleware passes its own base and cap.
"""

from __future__ import annotations

import random
from collections.abc import Callable

#: The relay's ceiling: a broker that is down is tried again at least once a minute.
MAX_BACKOFF_SECONDS = 60.0


def backoff(
    attempt: int,
    base: float = 0.5,
    maximum: float = MAX_BACKOFF_SECONDS,
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before attempt ``attempt + 1``, given ``attempt`` failed (1-based)."""
    ceiling = min(maximum, base * 2 ** max(0, attempt - 1))
    return ceiling / 2 + rng() * ceiling / 2
