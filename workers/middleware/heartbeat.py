"""Keeps the worker's ``WorkerProcess`` row current. The worker creates the row when it starts
(``WorkerView.process_id``); this middleware updates its heartbeat, ``in_flight`` and the
counters of a ``Metrics`` middleware every few seconds from a thread of its own, marks it
draining and finally stopped. A process killed with SIGKILL stops heartbeating and is shown as
lost (as is the row of a worker run without this middleware)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone

from workers.middleware.base import Middleware, WorkerView
from workers.middleware.metrics import Metrics
from workers.models import WorkerProcess, heartbeat_seconds

logger = logging.getLogger("workers.heartbeat")


class Heartbeat(Middleware):
    """``metrics``: where the counters come from (None: they stay 0)."""

    def __init__(self, interval: float | None = None, metrics: Metrics | None = None) -> None:
        self.interval = interval
        self.metrics = metrics
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def before_worker_boot(self, worker: WorkerView) -> None:
        if worker.process_id is None:
            return
        self._thread = threading.Thread(
            target=self._run, args=(worker,), name="heartbeat", daemon=True
        )
        self._thread.start()

    def before_worker_shutdown(self, worker: WorkerView) -> None:
        self._beat(worker, draining_at=timezone.now())

    def after_worker_shutdown(self, worker: WorkerView) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self._beat(worker, stopped_at=timezone.now())

    def _run(self, worker: WorkerView) -> None:
        interval = self.interval or heartbeat_seconds()
        try:
            while not self._stop.wait(interval):
                self._beat(worker)
        finally:
            connection.close()

    def _beat(self, worker: WorkerView, **extra: Any) -> None:
        if worker.process_id is None:
            return
        counts = self.metrics.snapshot() if self.metrics is not None else {}
        try:
            WorkerProcess.objects.filter(pk=worker.process_id).update(
                heartbeat_at=timezone.now(),
                in_flight=len(worker.in_flight),
                held_back=worker.held_back(),
                processed=counts.get("processed", 0),
                failed=counts.get("failed", 0),
                retried=counts.get("retried", 0),
                dead_lettered=counts.get("dead_lettered", 0),
                **extra,
            )
        except DatabaseError as exc:
            logger.warning("Heartbeat of worker %s failed: %s", worker.process_id, exc)
            close_old_connections()
