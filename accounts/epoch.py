"""What API requests look up on every call — a token with its user and queue limit, whether
that user may publish, a queue by id or name — kept per process while nothing it came from
has changed.

"Nothing has changed" is one number in the database, ``accounts_cacheepoch.value``, that
database triggers set to a new random value in the same transaction as any change to those
rows: tokens and their queue limits, users, groups and their memberships, permissions, queues
(migration ``accounts/0002``) — through the ORM, a queryset update, the Django admin or raw
SQL alike. ``EpochMiddleware`` reads it once at the start of each API request (one indexed
read instead of a query or two per lookup) and a process that finds a new number drops
everything it kept: a revoked token, a narrowed limit, a disabled queue take effect at the
next request in every process, with no timeout.

A process that never reads the number (the relay, a worker) keeps nothing: ``get`` loads
every time there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from django.db import connection
from django.http import HttpRequest, HttpResponse

T = TypeVar("T")

EPOCH = "SELECT value FROM accounts_cacheepoch WHERE id = 1"
#: Most entries kept per process (tokens, users, queues): beyond it, nothing more is kept
#: until the next change empties the cache.
MAX_ENTRIES = 10_000


class EpochCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._epoch: int | None = None
        self._values: dict[Hashable, Any] = {}

    def sync(self) -> None:
        """Read the epoch; forget everything if it moved."""
        with connection.cursor() as cursor:
            cursor.execute(EPOCH)
            row = cursor.fetchone()
        epoch = None if row is None else int(row[0])
        with self._lock:
            if epoch != self._epoch or epoch is None:
                self._values.clear()
                self._epoch = epoch

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        """The value kept under ``key``, or ``load()`` (kept when this process syncs, unless
        it is None: what is not found is looked up every time, so a stream of unknown keys
        fills nothing)."""
        with self._lock:
            if key in self._values:
                return self._values[key]
            epoch = self._epoch
        value = load()
        with self._lock:
            # Loaded after the sync that read ``epoch``: never older than that epoch's rows.
            fresh = epoch is not None and epoch == self._epoch
            if value is not None and fresh and len(self._values) < MAX_ENTRIES:
                self._values[key] = value
        return value

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._epoch = None


#: The web process's one.
cache = EpochCache()


class EpochMiddleware:
    """Sync the cache at the start of every API request (``/api/``)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/"):
            cache.sync()
        return self.get_response(request)
