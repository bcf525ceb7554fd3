"""The audit trail's retention: rows older than ``QUAYMASTER_AUDIT_RETENTION_DAYS`` (default
365) are deleted by ``prune``, run by Celery beat with the other housekeeping
(``audit.prune``, see ``audit/tasks.py`` and settings). It is the one place rows leave the
trail: every other save of an existing row or delete raises ``AppendOnlyError``."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.utils import timezone

from audit.models import AuditEvent


def retention() -> dt.timedelta:
    return dt.timedelta(days=float(getattr(settings, "QUAYMASTER_AUDIT_RETENTION_DAYS", 365)))


def prune(now: dt.datetime | None = None) -> int:
    """Delete audit rows older than the retention period; returns how many."""
    before = (now or timezone.now()) - retention()
    deleted, _ = models.QuerySet.delete(AuditEvent.objects.filter(at__lt=before))
    return deleted
