"""The ``WorkerProcess`` row of this process: created at boot, its heartbeat and counters
updated every few seconds by a thread of its own, marked draining and then stopped. A process
killed with SIGKILL stops heartbeating and is shown as lost."""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import TYPE_CHECKING, Any

from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone

from workers.middleware.base import Middleware
from workers.middleware.metrics import Metrics
from workers.models import WorkerProcess, heartbeat_seconds

if TYPE_CHECKING:
    from workers.runtime import Worker

logger = logging.getLogger("workers.heartbeat")


class Heartbeat(Middleware):
    def __init__(self, interval: float | None = None) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def before_worker_boot(self, worker: Worker) -> None:
        row = WorkerProcess.objects.create(
            queue=worker.queue,
            host=socket.gethostname(),
            pid=os.getpid(),
            concurrency=worker.options.concurrency,
        )
        worker.process_id = row.pk
        self._thread = threading.Thread(
            target=self._run, args=(worker,), name="heartbeat", daemon=True
        )
        self._thread.start()

    def before_worker_shutdown(self, worker: Worker) -> None:
        self._beat(worker, draining_at=timezone.now())

    def after_worker_shutdown(self, worker: Worker) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self._beat(worker, stopped_at=timezone.now())

    def _run(self, worker: Worker) -> None:
        interval = self.interval or heartbeat_seconds()
        try:
            while not self._stop.wait(interval):
                self._beat(worker)
        finally:
            connection.close()

    def _beat(self, worker: Worker, **extra: Any) -> None:
        if worker.process_id is None:
            return
        metrics = worker.find(Metrics)
        counts = metrics.snapshot() if metrics is not None else {}
        try:
            WorkerProcess.objects.filter(pk=worker.process_id).update(
                heartbeat_at=timezone.now(),
                in_flight=len(worker.in_flight),
                processed=counts.get("processed", 0),
                failed=counts.get("failed", 0),
                retried=counts.get("retried", 0),
                dead_lettered=counts.get("dead_lettered", 0),
                **extra,
            )
        except DatabaseError as exc:
            logger.warning("Heartbeat of worker %s failed: %s", worker.process_id, exc)
            close_old_connections()
