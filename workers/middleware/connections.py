"""Django database connections in long-lived threads, as a request cycle would treat them:
drop broken or expired connections (``CONN_MAX_AGE``) around each message, and close a
thread's connection when the thread ends (else PostgreSQL keeps the session)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import close_old_connections, connections

from workers.middleware.base import Middleware

if TYPE_CHECKING:
    from workers.job import Job
    from workers.runtime import Worker


class DatabaseConnections(Middleware):
    def before_process_message(self, worker: Worker, job: Job) -> None:
        close_old_connections()

    def after_process_message(self, worker: Worker, job: Job) -> None:
        close_old_connections()

    def before_worker_thread_shutdown(self, worker: Worker) -> None:
        connections.close_all()
