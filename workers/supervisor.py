"""``runworkers``: one (or ``processes_per_queue``) ``runworker`` child per enabled queue.

Every ``refresh_seconds`` the supervisor reads the Queue table again and reconciles:

* a newly enabled or added queue gets its children;
* a disabled, paused (``queues.pausing``) or deleted queue's children get SIGTERM (they
  drain) and are forgotten once they exit; one that outlives ``drain_seconds`` plus a grace
  period gets SIGKILL; a resumed queue gets children again;
* a queue whose settings changed (``updated_at``) gets its children replaced: SIGTERM to the
  old ones, new ones started at once (the engine shares the messages while both run);
* a child that exits on its own (crash, kill) is started again after an exponential backoff
  (``restart_delay`` doubled per consecutive failure, at most ``max_restart_delay``); the
  count resets once a child has run for ``stable_seconds``.

A Kafka queue's child is a static member of its consumer group (``--group-instance-id
<instance name>:<queue id>:<slot>:<queue version>``, see ``queues.backends.kafka.membership``):
restarted after a crash, it takes its partitions back without a rebalance; a replacement for
changed settings runs beside the old child under another id. ``instance_name`` (host name and
pid by default) must differ between supervisors serving the same queues.

SIGTERM to the supervisor forwards SIGTERM to every child and waits for them. Children are
asked (``PR_SET_PDEATHSIG``, Linux) to receive SIGTERM if the supervisor itself dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, close_old_connections

from queues.models import Queue

logger = logging.getLogger("workers.supervisor")

PR_SET_PDEATHSIG = 1
#: How long a stopping child may take beyond its drain before it is killed.
KILL_GRACE_SECONDS = 10.0


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    queue_id: int
    slot: int
    version: datetime
    process: subprocess.Popen[bytes]
    started_at: float
    stopping_since: float | None = None

    @property
    def pid(self) -> int:
        return self.process.pid


@dataclass
class Slot:
    """Restart bookkeeping of one (queue, slot) pair."""

    failures: int = 0
    restart_at: float = 0.0


@dataclass
class SupervisorOptions:
    processes_per_queue: int = 1
    concurrency: int | None = None
    drain_seconds: float = 30.0
    refresh_seconds: float = 5.0
    restart_delay: float = 1.0
    max_restart_delay: float = 60.0
    stable_seconds: float = 60.0
    #: Extra arguments for every ``runworker`` (e.g. ``--handlers-module``).
    worker_args: Sequence[str] = ()
    #: This supervisor's part of its Kafka children's static group member ids: the host name
    #: and the supervisor's pid by default (unique on the host, stable while it runs); a name
    #: that outlives the supervisor (a pod's) lets a restarted machine take its partitions back.
    instance_name: str = field(default_factory=lambda: f"{socket.gethostname()}.{os.getpid()}")


class Supervisor:
    def __init__(
        self,
        options: SupervisorOptions | None = None,
        *,
        spawn: Callable[[list[str]], subprocess.Popen[bytes]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.options = options or SupervisorOptions()
        self.children: dict[tuple[int, int], Child] = {}
        self.retiring: list[Child] = []
        self.slots: dict[tuple[int, int], Slot] = {}
        self._spawn = spawn or self._popen
        self._clock = clock
        self._desired: dict[int, Queue] = {}
        self._next_refresh = 0.0

    # -- the loop ---------------------------------------------------------------------------

    def run(self, stopping: threading.Event) -> None:
        tick = min(0.5, self.options.refresh_seconds)
        while not stopping.is_set():
            self.reconcile()
            stopping.wait(tick)
        self.shutdown()

    def reconcile(self) -> None:
        now = self._clock()
        if now >= self._next_refresh:
            self._refresh()
            self._next_refresh = now + self.options.refresh_seconds
        self._reap(now)
        self._retire_unwanted(now)
        self._start_missing(now)

    def shutdown(self) -> None:
        """SIGTERM every child, wait for their drain, SIGKILL what is left."""
        everyone = [*self.children.values(), *self.retiring]
        for child in everyone:
            self._terminate(child)
        deadline = time.monotonic() + self.options.drain_seconds + KILL_GRACE_SECONDS
        for child in everyone:
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("Worker %s did not stop in time: killing it", child.pid)
                child.process.kill()
                child.process.wait()
        self.children.clear()
        self.retiring.clear()

    # -- steps ------------------------------------------------------------------------------

    def _refresh(self) -> None:
        try:
            served = Queue.objects.filter(enabled=True, paused_at__isnull=True)
            self._desired = {q.pk: q for q in served}
        except DatabaseError as exc:
            # Keep what runs: a database blip must not stop every worker.
            logger.warning("Could not read the queues (keeping the current workers): %s", exc)
            close_old_connections()

    def _reap(self, now: float) -> None:
        for key, child in list(self.children.items()):
            code = child.process.poll()
            if code is None:
                continue
            del self.children[key]
            slot = self.slots.setdefault(key, Slot())
            if now - child.started_at >= self.options.stable_seconds:
                slot.failures = 0
            slot.failures += 1
            delay = min(
                self.options.max_restart_delay,
                self.options.restart_delay * 2 ** (slot.failures - 1),
            )
            slot.restart_at = now + delay
            logger.warning(
                "Worker %s (queue %s) exited with %s; restarting in %.1fs",
                child.pid,
                child.queue_id,
                code,
                delay,
            )
        for child in list(self.retiring):
            if child.process.poll() is not None:
                self.retiring.remove(child)
            elif child.stopping_since is not None and now - child.stopping_since > (
                self.options.drain_seconds + KILL_GRACE_SECONDS
            ):
                logger.warning("Worker %s did not drain in time: killing it", child.pid)
                child.process.kill()

    def _retire_unwanted(self, now: float) -> None:
        for key, child in list(self.children.items()):
            queue = self._desired.get(child.queue_id)
            if (
                queue is not None
                and queue.updated_at == child.version
                and child.slot < self.options.processes_per_queue
            ):
                continue
            del self.children[key]
            self.slots.pop(key, None)
            self._terminate(child)
            self.retiring.append(child)
            logger.info("Stopping worker %s of queue %s", child.pid, child.queue_id)

    def _start_missing(self, now: float) -> None:
        for queue in self._desired.values():
            for slot_number in range(self.options.processes_per_queue):
                key = (queue.pk, slot_number)
                if key in self.children:
                    continue
                slot = self.slots.setdefault(key, Slot())
                if now < slot.restart_at:
                    continue
                process = self._spawn(self.command(queue, slot_number))
                self.children[key] = Child(
                    queue.pk, slot_number, queue.updated_at, process, started_at=now
                )
                logger.info("Started worker %s for queue %s", process.pid, queue.name)

    # -- processes --------------------------------------------------------------------------

    def command(self, queue: Queue, slot: int = 0) -> list[str]:
        command = [
            sys.executable,
            str(Path(settings.BASE_DIR) / "manage.py"),
            "runworker",
            str(queue.pk),
            "--drain-seconds",
            str(self.options.drain_seconds),
        ]
        if queue.type == "kafka":
            version = f"{int(queue.updated_at.timestamp() * 1_000_000):x}"  # settings' version
            member = f"{self.options.instance_name}:{queue.pk}:{slot}:{version}"
            command += ["--group-instance-id", member]
        if self.options.concurrency is not None:
            command += ["--concurrency", str(self.options.concurrency)]
        return [*command, *self.options.worker_args]

    @staticmethod
    def _popen(command: list[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            command,
            cwd=settings.BASE_DIR,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )

    def _terminate(self, child: Child) -> None:
        if child.stopping_since is None:
            child.stopping_since = self._clock()
        if child.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGTERM)
