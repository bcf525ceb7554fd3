"""Worker middleware, one concern per module: the hooks and the view of the worker they get in
``base``, the order the worker calls them in ``hooks``."""

from __future__ import annotations

from workers.middleware.base import Middleware, WorkerView
from workers.middleware.connections import DatabaseConnections
from workers.middleware.heartbeat import Heartbeat
from workers.middleware.hooks import Hooks
from workers.middleware.lease import LeaseExtension
from workers.middleware.lifecycle import LifecycleLog
from workers.middleware.logcontext import LogContext
from workers.middleware.metrics import Metrics
from workers.middleware.pause import PauseAfterFailures
from workers.middleware.retries import Retries, backoff

__all__ = [
    "DatabaseConnections",
    "Heartbeat",
    "Hooks",
    "LeaseExtension",
    "LifecycleLog",
    "LogContext",
    "Metrics",
    "Middleware",
    "PauseAfterFailures",
    "Retries",
    "WorkerView",
    "backoff",
]
