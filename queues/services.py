"""What the API, the back-office and the relay call: one path for every queue operation."""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from queues.backends import get_backend
from queues.backends.base import Backend, CheckResult, OutgoingMessage, PublishResult, QueueStats
from queues.errors import BadMessage, MessageTooLarge, QueueError
from queues.models import OutboxMessage, OutboxState, Queue, QueueLink
from queues.outbox import notify_at_commit
from zstorage.errors import QueryError
from zstorage.query import compile_query


def create_queue(*, secret: str = "", **fields: Any) -> Queue:
    """Validate (``full_clean``: raises ValidationError) and save a queue; ``secret`` is
    encrypted before it touches the database."""
    queue = Queue(**fields)
    queue.set_secret(secret)
    queue.full_clean()
    queue.save()
    return queue


def update_queue(queue: Queue, *, secret: str | None = None, **fields: Any) -> Queue:
    """Change fields; ``secret=None`` keeps the stored secret, ``""`` clears it."""
    for name, value in fields.items():
        setattr(queue, name, value)
    if secret is not None:
        queue.set_secret(secret)
    queue.full_clean()
    queue.save()
    return queue


def resolve_queue(id_or_name: int | str) -> Queue:
    """The queue with this primary key or name (``Queue.DoesNotExist`` otherwise). A digits-only
    string is tried as an id first, then as a name."""
    if isinstance(id_or_name, int):
        return Queue.objects.get(pk=id_or_name)
    if id_or_name.isdigit():
        with contextlib.suppress(Queue.DoesNotExist):
            return Queue.objects.get(pk=int(id_or_name))
    return Queue.objects.get(name=id_or_name)


@contextlib.contextmanager
def backend_for(queue: Queue) -> Iterator[Backend]:
    backend = get_backend(queue)
    try:
        yield backend
    finally:
        backend.close()


@dataclass
class _Pool:
    """Idle backends of one queue, as it was at ``version`` (its ``updated_at``)."""

    version: dt.datetime
    idle: list[Backend] = field(default_factory=list)
    last_used: float = field(default_factory=time.monotonic)
    retired: bool = False


class BackendCache:
    """Publishing backends kept for the life of the process, per queue.

    A backend costs a connection (AMQP), a producer with its threads (Kafka) or a client with
    its endpoint resolution (boto3) — 50 to 120 ms — so the publish API keeps them instead of
    building one per request. Entries are keyed by the queue's primary key and ``updated_at``:
    an edited queue (url, credentials, enabled…) gets new backends, and the old ones are
    closed once returned. Backends are not thread-safe, so ``lease`` hands each caller a
    backend of its own (with gunicorn's sync workers that is always the same one; with threads,
    one per concurrent request, at most ``max_idle`` kept per queue). A backend whose call
    failed (other than a message refused before sending) is closed rather than kept, so the
    next request starts from a fresh connection. Backends idle for ``idle_seconds`` are closed
    (a deleted queue's too), and everything is closed at process exit.
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


#: The process's publishing backends (the publish API and the back-office's test message).
publishers = BackendCache()
atexit.register(publishers.close)


def provision(queue: Queue) -> None:
    with backend_for(queue) as backend:
        backend.provision()


def check_connection(queue: Queue) -> CheckResult:
    with backend_for(queue) as backend:
        return backend.check()


def queue_stats(queue: Queue) -> QueueStats:
    with backend_for(queue) as backend:
        return backend.stats()


def as_outgoing(message: OutgoingMessage | Mapping[str, Any]) -> OutgoingMessage:
    """A JSON object becomes a message with a fresh id; an OutgoingMessage stays as it is."""
    if isinstance(message, OutgoingMessage):
        return message
    return OutgoingMessage(str(uuid.uuid4()), dict(message))


def publish(
    queue: Queue, messages: Sequence[OutgoingMessage | Mapping[str, Any]]
) -> list[PublishResult]:
    """Publish a batch with a short-lived backend. Database queues insert in the caller's
    transaction (atomic on their own otherwise); the relay keeps its own backend instead."""
    outgoing = [as_outgoing(m) for m in messages]
    with backend_for(queue) as backend, transaction.atomic():
        return backend.publish(outgoing)


# -- what the back-office adds: live figures, purge, switching a queue, the outbox ------------


#: Backend attributes that bound a network call, shortened by ``live_stats(timeout=...)``.
TIMEOUTS = ("connect_timeout", "read_timeout", "confirm_timeout")


@dataclass(frozen=True)
class LiveStats:
    """A queue's figures as its engine reports them now, or why it could not answer."""

    stats: QueueStats | None
    problem: str = ""
    code: str = ""

    @property
    def ok(self) -> bool:
        return self.stats is not None


def live_stats(queue: Queue, timeout: float | None = None) -> LiveStats:
    """``stats()`` for a page: an engine that does not answer (or refuses) is a value to show,
    not an error; ``timeout`` shortens the backend's connect and read timeouts so a dashboard
    does not wait the full publishing timeouts on a broker that is down. Dead letters an admin
    already settled but the engine still counts (Kafka) are left out."""
    try:
        with backend_for(queue) as backend:
            if timeout is not None:
                for name in TIMEOUTS:
                    if hasattr(backend, name):
                        setattr(backend, name, min(float(getattr(backend, name)), timeout))
            stats = backend.stats()
            settled = backend.settled_dead_letters() if stats.dead_letters else 0
    except QueueError as exc:
        return LiveStats(None, exc.message, exc.code)
    if settled:
        stats = replace(stats, dead_letters=max(0, (stats.dead_letters or 0) - settled))
    return LiveStats(stats)


def purge(queue: Queue) -> int | None:
    """Drop every message waiting in the queue (see each backend's ``purge``)."""
    with backend_for(queue) as backend:
        return backend.purge()


def set_enabled(queue: Queue, enabled: bool) -> Queue:
    """A disabled queue refuses API publishes, gets no outbox rows from its table links, and
    the relay holds back the rows it already has."""
    queue.enabled = enabled
    queue.save(update_fields=["enabled", "updated_at"])
    return queue


def retry_outbox(queue: Queue | None = None) -> tuple[int, int]:
    """Make the outbox try again now: pending rows become due, failed rows pending again with
    their attempts reset. Returns (pending made due, failed requeued). Wakes the relay."""
    rows = OutboxMessage.objects.all() if queue is None else queue.outbox.all()
    now = timezone.now()
    with transaction.atomic():
        due = rows.filter(state=OutboxState.PENDING).update(available_at=now)
        requeued = rows.filter(state=OutboxState.FAILED).update(
            state=OutboxState.PENDING, attempts=0, available_at=now
        )
        if due or requeued:
            notify_at_commit()
    return due, requeued


def save_link(link: QueueLink) -> QueueLink:
    """Validate a table link (its filter against the table's fields: ``ValidationError`` keyed
    ``filter``) and save it."""
    link.full_clean()
    if link.filter:
        try:
            compile_query(link.filter, list(link.table.fields.all()))
        except QueryError as exc:
            raise ValidationError({"filter": [exc.message]}) from exc
    link.save()
    return link
