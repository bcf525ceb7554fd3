"""Backends kept for the life of a process, per queue: the one cache of the platform.

A backend costs a connection (AMQP), a producer with its threads (Kafka) or a client with its
endpoint resolution (boto3) — 50 to 120 ms — so whatever publishes over and over keeps its
backends here instead of building one per call: the publish API (``queues.services.publishers``),
the relay (one cache of its own, closed with it) and ``ctx.publish`` (one per worker thread).
A one-off call (provision, check, stats, purge…) takes a fresh backend with ``get_backend``
and closes it (``with get_backend(queue) as backend:``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from queues.backends import get_backend
from queues.backends.base import Backend
from queues.errors import BadMessage, MessageTooLarge
from queues.models import Queue


@dataclass
class _Pool:
    """Idle backends of one queue, as it was at ``version`` (its ``updated_at``)."""

    version: dt.datetime
    idle: list[Backend] = field(default_factory=list)
    last_used: float = field(default_factory=time.monotonic)
    retired: bool = False


class BackendCache:
    """Publishing backends of one process, per queue; thread-safe.

    Entries are keyed by the queue's primary key and ``updated_at``: an edited queue (url,
    credentials, enabled…) gets new backends, and the old ones are closed once returned.
    Backends are not thread-safe, so ``lease`` hands each caller a backend of its own (with
    gunicorn's sync workers that is always the same one; with threads, one per concurrent
    caller, at most ``max_idle`` kept per queue). A backend whose block raised (other than a
    message refused before sending) is closed rather than kept, so the next caller starts
    from a fresh connection. Backends idle for ``idle_seconds`` are closed (a deleted queue's
    too), and ``close`` closes the rest. A forked child starts with an empty cache.
    """

    def __init__(
        self,
        factory: Callable[[Queue], Backend] = get_backend,
        *,
        max_idle: int = 4,
        idle_seconds: float = 300.0,
    ) -> None:
        self.factory = factory
        self.max_idle = max_idle
        self.idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._pools: dict[int, _Pool] = {}
        self._pid = os.getpid()
        self._last_sweep = time.monotonic()

    @contextlib.contextmanager
    def lease(self, queue: Queue) -> Iterator[Backend]:
        """A backend for ``queue``, for this caller alone until the block ends."""
        pool, backend, closing = self._take(queue)
        _close_all(closing)
        if backend is None:
            backend = self.factory(queue)
        try:
            yield backend
        except BaseException as exc:
            # Refused before anything was sent: the backend is as good as it was.
            self._give_back(pool, backend, keep=isinstance(exc, (MessageTooLarge, BadMessage)))
            raise
        self._give_back(pool, backend, keep=True)

    def close(self) -> None:
        """Close every idle backend; those in use are closed when given back."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
            closing = self._retire(pools)
        _close_all(closing)

    def __len__(self) -> int:
        """Idle backends held (for tests and monitoring)."""
        with self._lock:
            return sum(len(pool.idle) for pool in self._pools.values())

    # -- internals ----------------------------------------------------------------------------

    def _take(self, queue: Queue) -> tuple[_Pool | None, Backend | None, list[Backend]]:
        """(the queue's pool, an idle backend or None, backends to close outside the lock).

        A caller holding an older copy of the queue than the cache (it read the row just
        before an edit) gets no pool: its backend is built for it and closed after use."""
        closing: list[Backend] = []
        now = time.monotonic()
        with self._lock:
            if self._pid != os.getpid():
                # A forked child: the parent's clients (sockets, librdkafka threads) are not
                # ours to use or close.
                self._pools, self._pid = {}, os.getpid()
            if now - self._last_sweep > min(60.0, self.idle_seconds):
                self._last_sweep = now
                stale = [k for k, p in self._pools.items() if now - p.last_used > self.idle_seconds]
                closing += self._retire([self._pools.pop(k) for k in stale])
            pool = self._pools.get(queue.pk)
            if pool is not None and pool.version != queue.updated_at:
                if pool.version > queue.updated_at:
                    return None, None, closing
                closing += self._retire([self._pools.pop(queue.pk)])
                pool = None
            if pool is None:
                pool = self._pools[queue.pk] = _Pool(queue.updated_at)
            pool.last_used = now
            return pool, (pool.idle.pop() if pool.idle else None), closing

    def _give_back(self, pool: _Pool | None, backend: Backend, *, keep: bool) -> None:
        with self._lock:
            if (
                keep
                and pool is not None
                and not pool.retired
                and len(pool.idle) < self.max_idle
                and self._pid == os.getpid()
            ):
                pool.idle.append(backend)
                return
        backend.close()

    @staticmethod
    def _retire(pools: list[_Pool]) -> list[Backend]:
        closing: list[Backend] = []
        for pool in pools:
            pool.retired = True
            closing += pool.idle
            pool.idle = []
        return closing


def _close_all(backends: list[Backend]) -> None:
    for backend in backends:
        with contextlib.suppress(Exception):
            backend.close()
