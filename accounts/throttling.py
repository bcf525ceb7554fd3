"""Rate limiting per API token (per user for session requests).

Counts live in Django's cache: per process with the default local-memory cache, shared by all
processes when ``CACHE_URL`` points at a shared cache.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.throttling import SimpleRateThrottle

from accounts.models import ApiToken

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView


class TokenRateThrottle(SimpleRateThrottle):
    """A sliding-window counter: two integers per client in the cache.

    DRF's ``SimpleRateThrottle`` keeps the timestamp of every request in the window as one
    list, read, trimmed and written back whole on each request (up to 6,000 floats pickled
    twice per request at the default 6000/min). Here the cache holds a count per fixed window,
    and the estimate for the sliding window is the current window's count plus the previous
    window's, weighted by how much of it the sliding window still covers. Refused requests are
    not counted.
    """

    scope = "token"
    # Set by SimpleRateThrottle.__init__ (parse_rate), and per request by allow_request.
    num_requests: int
    duration: int
    elapsed: float = 0.0
    current: int = 0
    previous: int = 0

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if isinstance(request.auth, ApiToken):
            return self.cache_format % {"scope": self.scope, "ident": f"t{request.auth.pk}"}
        if request.user and request.user.is_authenticated:
            return self.cache_format % {"scope": self.scope, "ident": f"u{request.user.pk}"}
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def allow_request(self, request: Request, view: APIView) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        window, self.elapsed = divmod(self.now / self.duration, 1)
        current_key, previous_key = f"{self.key}:{window:.0f}", f"{self.key}:{window - 1:.0f}"
        counts = self.cache.get_many([current_key, previous_key])
        self.current = int(counts.get(current_key, 0))
        self.previous = int(counts.get(previous_key, 0))
        if self.previous * (1 - self.elapsed) + self.current >= self.num_requests:
            return self.throttle_failure()
        try:
            self.cache.incr(current_key)
        except ValueError:  # the window's first request (or its count expired)
            if not self.cache.add(current_key, 1, self.duration * 2):
                self.cache.incr(current_key)
        return True

    def wait(self) -> float | None:
        """Seconds until the estimate is under the limit again."""
        limit, duration = self.num_requests, self.duration
        if self.current < limit:
            # Within this window, as the previous window's weight shrinks.
            needed = 1 - (limit - self.current) / self.previous if self.previous else 0.0
            return max(0.0, (needed - self.elapsed) * duration)
        # In the next window, this window's count becomes the weighted one.
        return (1 - self.elapsed) * duration + (1 - limit / self.current) * duration
