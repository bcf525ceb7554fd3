"""One evaluator at a time across processes: a lease row, taken by one conditional UPDATE.

The scheduler's beat task and ``manage.py evaluate_alerts`` may both run, on several machines;
whoever holds the lease evaluates and the others skip their pass. A holder renews it with each
pass; one that dies loses it when it expires (``ttl``), and another takes over. The same
statements on PostgreSQL and SQLite (no advisory locks, no ``SELECT … FOR UPDATE``).
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from alerts.models import EvaluatorLease

NAME = "alerts.evaluator"


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def acquire(owner: str, ttl: timedelta) -> bool:
    """Take (or renew) the lease if it is free, expired or already ``owner``'s."""
    now = timezone.now()
    free = Q(owner=owner) | Q(owner="") | Q(expires_at__lt=now)
    leases = EvaluatorLease.objects.filter(free, name=NAME)
    taken = leases.update(owner=owner, expires_at=now + ttl)
    if taken == 0 and not EvaluatorLease.objects.filter(name=NAME).exists():
        EvaluatorLease.objects.get_or_create(name=NAME)  # another process may win: fine
        taken = leases.update(owner=owner, expires_at=now + ttl)
    return taken == 1


def release(owner: str) -> None:
    EvaluatorLease.objects.filter(name=NAME, owner=owner).update(
        owner="", expires_at=timezone.now()
    )


def holder() -> str:
    """Who holds the lease now ("" when nobody does)."""
    lease = EvaluatorLease.objects.filter(name=NAME, expires_at__gte=timezone.now()).first()
    return lease.owner if lease is not None else ""
