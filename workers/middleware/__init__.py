"""Worker middleware, one concern per module (see ``base``)."""

from __future__ import annotations

from workers.middleware.base import Middleware
from workers.middleware.connections import DatabaseConnections
from workers.middleware.heartbeat import Heartbeat
from workers.middleware.lease import LeaseExtension
from workers.middleware.lifecycle import LifecycleLog
from workers.middleware.metrics import Metrics
from workers.middleware.retries import Retries, backoff

__all__ = [
    "DatabaseConnections",
    "Heartbeat",
    "LeaseExtension",
    "LifecycleLog",
    "Metrics",
    "Middleware",
    "Retries",
    "backoff",
]
