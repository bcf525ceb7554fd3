"""Relay leases: one relay at a time publishes a given queue.

A lease is a ``RelayLease`` row per queue with an owner and an expiry: who holds which queue
(the health page and ``quaymaster_relay_*`` metrics read it), renewed with every batch the
relay marks, so a relay whose queue was taken over learns it at its next mark and stops.

What makes a lease free depends on the database:

* PostgreSQL: a session-level advisory lock per queue (``queues.dialects.session_locks``) on a
  connection the relay holds for its lifetime. A relay takes the row only while it holds the
  lock, whatever the row's expiry; when the relay dies, even by SIGKILL, the server ends its
  session and frees the lock at once, and the next relay to try (every poll round, 0.5 s by
  default, or at a NOTIFY) takes the queue over. The expiry is then only shown, never waited
  for. A relay that is alive but stuck keeps its queues (its session lives): correctness
  first, never two relays on one queue.
* SQLite (one process, file locks): the row's expiry. A relay takes the row when it is free,
  expired or already its own (one UPDATE; created the first time a queue is seen); a killed
  relay's queues are taken over after ``lease``.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Q
from django.utils import timezone

from queues.dialects import Renewal
from queues.dialects.session_locks import SessionLocks, session_locks
from queues.models import RelayLease

#: The relay's advisory-lock key space ("QMRL"), keyed by queue id within it.
RELAY_LOCK_SPACE = 0x514D524C


class LeaseStore:
    """The leases of one relay (``owner``), each good for ``lease`` unless renewed; held through
    ``locks`` where the database has session locks (``locks=False``: the expiry alone)."""

    def __init__(
        self, owner: str, lease: dt.timedelta, locks: SessionLocks | bool | None = True
    ) -> None:
        self.owner = owner
        self.lease = lease
        if locks is True:
            locks = session_locks(RELAY_LOCK_SPACE, f"quaymaster relay {owner}"[:63])
        self.locks: SessionLocks | None = locks or None

    def acquire(self, queue_id: int) -> bool:
        """Take the queue's lease: its lock where there are locks, else the row if it is free,
        expired or already ours."""
        now = timezone.now()
        if self.locks is not None:
            if not self.locks.take(queue_id):
                return False
            # Ours: whoever the row names has ended its session (or given the lock back).
            leases = RelayLease.objects.filter(queue_id=queue_id)
        else:
            free = Q(owner=self.owner) | Q(expires_at__lt=now) | Q(owner="")
            leases = RelayLease.objects.filter(free, queue_id=queue_id)
        taken = leases.update(owner=self.owner, expires_at=now + self.lease)
        if taken == 0 and not RelayLease.objects.filter(queue_id=queue_id).exists():
            RelayLease.objects.get_or_create(queue_id=queue_id)
            taken = leases.update(owner=self.owner, expires_at=now + self.lease)
        if taken != 1 and self.locks is not None:
            self.locks.give_back(queue_id)
        return taken == 1

    def renewal(self, queue_id: int, now: dt.datetime | None = None) -> Renewal:
        """The renewal of a lease this relay holds, for a statement that applies it with its
        marks (see ``OutboxRows.mark_published``)."""
        return Renewal(queue_id, self.owner, (now or timezone.now()) + self.lease)

    def release(self, queue_id: int) -> None:
        try:
            RelayLease.objects.filter(queue_id=queue_id, owner=self.owner).update(
                owner="", expires_at=timezone.now()
            )
        finally:
            if self.locks is not None:
                self.locks.give_back(queue_id)

    def close(self) -> None:
        """Give every lock back (the session ends)."""
        if self.locks is not None:
            self.locks.close()
