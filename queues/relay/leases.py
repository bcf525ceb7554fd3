"""Relay leases: one relay at a time publishes a given queue.

A lease is a ``RelayLease`` row per queue with an owner and an expiry. A relay takes it when
it is free, expired or already its own (one UPDATE; the row is created the first time a
queue is seen), renews it with every batch it marks, and frees it when it stops draining the
queue. A killed relay's leases expire after ``lease`` and another relay takes its queues over.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Q
from django.utils import timezone

from queues.dialects import Renewal
from queues.models import RelayLease


class LeaseStore:
    """The leases of one relay (``owner``), each good for ``lease`` unless renewed."""

    def __init__(self, owner: str, lease: dt.timedelta) -> None:
        self.owner = owner
        self.lease = lease

    def acquire(self, queue_id: int) -> bool:
        """Take the queue's lease if it is free, expired or already ours."""
        now = timezone.now()
        free = Q(owner=self.owner) | Q(expires_at__lt=now) | Q(owner="")
        leases = RelayLease.objects.filter(free, queue_id=queue_id)
        taken = leases.update(owner=self.owner, expires_at=now + self.lease)
        if taken == 0 and not RelayLease.objects.filter(queue_id=queue_id).exists():
            RelayLease.objects.get_or_create(queue_id=queue_id)
            taken = leases.update(owner=self.owner, expires_at=now + self.lease)
        return taken == 1

    def renewal(self, queue_id: int, now: dt.datetime | None = None) -> Renewal:
        """The renewal of a lease this relay holds, for a statement that applies it with its
        marks (see ``OutboxRows.mark_published``)."""
        return Renewal(queue_id, self.owner, (now or timezone.now()) + self.lease)

    def release(self, queue_id: int) -> None:
        RelayLease.objects.filter(queue_id=queue_id, owner=self.owner).update(
            owner="", expires_at=timezone.now()
        )
