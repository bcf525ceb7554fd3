"""Django database connections in long-lived threads, as a request cycle would treat them:
drop broken or expired connections (``CONN_MAX_AGE``) between messages, and close a thread's
connection when the thread ends (else PostgreSQL keeps the session).

``close_old_connections`` walks every alias through asgiref's thread-critical locals, which
cost as much as a no-op handler, so a thread checks at most every ``interval`` seconds — and
always after a handler raised, since that is when a connection is left broken or in an
aborted transaction."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from django.db import close_old_connections, connections

from workers.middleware.base import Middleware, WorkerView

if TYPE_CHECKING:
    from workers.job import Job


class DatabaseConnections(Middleware):
    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._checked = threading.local()

    def before_process_message(self, worker: WorkerView, job: Job) -> None:
        now = time.monotonic()
        if now - getattr(self._checked, "at", -self.interval) >= self.interval:
            self._check(now)

    def after_process_message(self, worker: WorkerView, job: Job) -> None:
        if job.exception is not None:
            self._check(time.monotonic())

    def _check(self, now: float) -> None:
        close_old_connections()
        self._checked.at = now

    def before_worker_thread_shutdown(self, worker: WorkerView) -> None:
        connections.close_all()
