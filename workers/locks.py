"""``ctx.lock(name)``: a lock shared by every worker process on the same database.

* PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) on a signed 64-bit hash
  of the name, tried until a deadline. A crashed holder's session ends and the lock goes with
  it, so ``ttl`` is not needed there (and ignored). The lock lives on the calling thread's
  connection: take and release it on the same thread.
* SQLite (the embedded default): a ``workers.Lock`` row with an owner token and an expiry,
  taken by an UPDATE of an expired row or an INSERT guarded by the unique name. A holder that
  crashed blocks others for at most ``ttl`` seconds; a holder that outlives its ``ttl`` loses
  the lock, so choose a ``ttl`` longer than the critical section.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
import uuid
from datetime import timedelta
from types import TracebackType

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from queues.dialects import dialect
from workers.errors import LockTimeout
from workers.models import Lock

POLL_SECONDS = 0.05


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``name`` (PostgreSQL's bigint advisory-lock space)."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class DistributedLock:
    """A context manager: ``with DistributedLock("customer:42", ttl=60, timeout=10): ...``."""

    def __init__(self, name: str, *, ttl: float = 60.0, timeout: float = 10.0) -> None:
        if not name:
            raise ValueError("A lock needs a name.")
        self.name = name
        self.ttl = ttl
        self.timeout = timeout
        self.acquired = False
        self._token = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{uuid.uuid4()}"

    @property
    def _advisory(self) -> bool:
        return dialect().advisory_locks

    def acquire(self) -> None:
        deadline = time.monotonic() + max(0.0, self.timeout)
        while not self._try():
            if time.monotonic() >= deadline:
                raise LockTimeout(self.name, self.timeout)
            time.sleep(POLL_SECONDS)  # polling the lock, bounded by the deadline
        self.acquired = True

    def release(self) -> None:
        if not self.acquired:
            return
        self.acquired = False
        if self._advisory:
            try:
                dialect().advisory_unlock(lock_key(self.name))
            except DatabaseError:
                # The transaction is aborted: the unlock cannot run. Have the connection closed
                # after the handler (close_old_connections), which ends the session's locks.
                connection.close_at = 0
                raise
        else:
            Lock.objects.filter(name=self.name, owner=self._token).delete()

    def _try(self) -> bool:
        if self._advisory:
            return dialect().try_advisory_lock(lock_key(self.name))
        now = timezone.now()
        expires = now + timedelta(seconds=self.ttl)
        with transaction.atomic():
            taken = Lock.objects.filter(name=self.name, expires_at__lte=now).update(
                owner=self._token, expires_at=expires
            )
            if taken:
                return True
            try:
                with transaction.atomic():
                    Lock.objects.create(name=self.name, owner=self._token, expires_at=expires)
            except IntegrityError:
                return False
            return True

    def __enter__(self) -> DistributedLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
