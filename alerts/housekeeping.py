"""Clean-up of the alerts app, run as a Celery periodic task (``alerts.prune``): alerts resolved
longer ago than ``QUAYMASTER_ALERT_RETENTION_DAYS``, with their history. Open alerts are never
deleted, however old."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone

from alerts.models import Alert, AlertEvent, AlertState


def retention() -> dt.timedelta:
    return dt.timedelta(days=float(getattr(settings, "QUAYMASTER_ALERT_RETENTION_DAYS", 90)))


def prune(now: dt.datetime | None = None) -> int:
    """Delete old resolved alerts and their events; how many alerts went."""
    old = Alert.objects.filter(
        state=AlertState.RESOLVED, resolved_at__lt=(now or timezone.now()) - retention()
    )
    AlertEvent.objects.filter(alert__in=old).delete()
    count, _ = old.delete()
    return count
