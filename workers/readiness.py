"""Readiness: can this deployment do its work right now, and if only in part, why not.

``/healthz`` is liveness (the process answers; nothing else is asked). ``/readyz``,
``manage.py health`` and the dashboard ask the same checks here, each timed:

- ``database``: a query answers. Without it nothing works: the status is ``unavailable``.
- ``engine <type>``: each engine the enabled queues use is reached with their settings and
  credentials (one check per distinct connection, in parallel, within a deadline).
- ``outbox``: the oldest pending message has waited less than
  ``QUAYMASTER_READY_OUTBOX_AGE_SECONDS``, and none failed.
- ``workers``: every enabled queue has a live worker, and none is paused after failures.
- ``dead letters``: no message was dead-lettered in the last
  ``QUAYMASTER_READY_DEAD_LETTER_MINUTES``.

Any of those but the database failing makes the status ``degraded``: the web process still
serves (an orchestrator must not take every web process out because a broker is down), and
the reason says what to look at. What a check says never holds a secret, a host or a driver's
words; queue names are given only to admins (``detail``).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from queues import services
from queues.errors import QueueError
from queues.models import Queue, QueueType
from queues.relay import outbox_stats
from workers.models import EventKind, LifecycleEvent, WorkerProcess

logger = logging.getLogger(__name__)

#: The longest all engine checks together may take.
ENGINE_DEADLINE = 3.0


class Status(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"
    UNAVAILABLE = "unavailable"


@dataclass
class Check:
    name: str
    status: Status
    ms: float
    #: What is wrong, in words anyone may read (no queue names).
    reason: str = ""
    #: The same with the queues concerned, for admins.
    detail: str = ""


@dataclass
class Report:
    status: Status
    checks: list[Check] = field(default_factory=list)

    def as_json(self, *, detail: bool) -> dict[str, Any]:
        checks = []
        for check in self.checks:
            shown = asdict(check)
            if not detail:
                shown.pop("detail")
            checks.append(shown)
        return {"status": self.status, "checks": checks}


def _timed(name: str, run: Any) -> Check:
    started = time.perf_counter()
    status, reason, detail = run()
    return Check(name, status, round((time.perf_counter() - started) * 1000, 1), reason, detail)


def _database() -> tuple[Status, str, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        logger.error("Readiness: the database did not answer: %s", str(exc).strip())
        return Status.UNAVAILABLE, "The database did not answer.", ""
    return Status.OK, "", ""


def _engine_checks(queues: list[Queue]) -> list[Check]:
    """One check per engine type, reaching each distinct connection its queues use."""
    by_connection: dict[tuple[str, str], list[Queue]] = defaultdict(list)
    for queue in queues:
        if queue.type == QueueType.DATABASE:
            continue  # the database check covers it
        try:
            where = queue.connection_url
        except QueueError:
            where = f"unconfigured:{queue.pk}"
        by_connection[(queue.type, where)].append(queue)
    if not by_connection:
        return []
    started = time.perf_counter()
    pool = ThreadPoolExecutor(max_workers=min(8, len(by_connection)))
    futures = {
        pool.submit(services.check_connection, members[0]): (engine, members)
        for (engine, _), members in by_connection.items()
    }
    done, _ = wait(futures, timeout=ENGINE_DEADLINE)
    pool.shutdown(wait=False, cancel_futures=True)
    ms = round((time.perf_counter() - started) * 1000, 1)
    failed: dict[str, list[str]] = defaultdict(list)
    engines = sorted({engine for engine, _ in futures.values()})
    for future, (engine, members) in futures.items():
        names = [q.name for q in members]
        try:
            answer = future.result(timeout=0) if future in done else None
        except Exception:  # an engine's failure, in whatever form its client raises it
            answer = None
        if answer is None or not answer.ok:
            failed[engine] += names
    checks = []
    for engine in engines:
        if failed.get(engine):
            checks.append(
                Check(
                    f"engine {engine}",
                    Status.DEGRADED,
                    ms,
                    f"{QueueType(engine).label} did not answer for some queues.",
                    f"{QueueType(engine).label} did not answer for: {', '.join(failed[engine])}.",
                )
            )
        else:
            checks.append(Check(f"engine {engine}", Status.OK, ms))
    return checks


def _outbox() -> tuple[Status, str, str]:
    stats = outbox_stats()
    limit = float(getattr(settings, "QUAYMASTER_READY_OUTBOX_AGE_SECONDS", 300))
    oldest = stats["oldest_pending_seconds"]
    problems = []
    if oldest is not None and oldest > limit:
        problems.append(
            f"the oldest pending message has waited {oldest:.0f} s (more than {limit:.0f} s): "
            "is a relay running?"
        )
    if stats["failed"]:
        problems.append(f"{stats['failed']} failed (see the Outbox page)")
    if not problems:
        return Status.OK, "", ""
    text = "Outbox: " + "; ".join(problems) + "."
    return Status.DEGRADED, text, text


def _workers(queues: list[Queue]) -> tuple[Status, str, str]:
    served = set(WorkerProcess.objects.alive().values_list("queue_id", flat=True))
    # A queue paused after consecutive failures has no worker by design: said as such.
    paused = sorted(q.name for q in queues if q.paused_at is not None)
    idle = [q.name for q in queues if q.pk not in served and q.paused_at is None]
    if not idle and not paused:
        return Status.OK, "", ""
    reasons, details = [], []
    if idle:
        count = f"{len(idle)} enabled queue{'' if len(idle) == 1 else 's'}"
        reasons.append(f"{count} {'has' if len(idle) == 1 else 'have'} no live worker.")
        details.append(f"No live worker for: {', '.join(sorted(idle))}.")
    if paused:
        count = f"{len(paused)} queue{'' if len(paused) == 1 else 's'}"
        reasons.append(f"{count} paused after consecutive handler failures.")
        details.append(f"Paused after consecutive handler failures: {', '.join(paused)}.")
    return Status.DEGRADED, " ".join(reasons), " ".join(details)


def _dead_letters() -> tuple[Status, str, str]:
    minutes = float(getattr(settings, "QUAYMASTER_READY_DEAD_LETTER_MINUTES", 5))
    since = timezone.now() - timedelta(minutes=minutes)
    recent = list(
        LifecycleEvent.objects.filter(kind=EventKind.DEAD_LETTERED, at__gte=since).values_list(
            "queue", flat=True
        )
    )
    if not recent:
        return Status.OK, "", ""
    window = f"in the last {minutes:g} minutes"
    count = f"{len(recent)} message{'' if len(recent) == 1 else 's'}"
    return (
        Status.DEGRADED,
        f"{count} dead-lettered {window}.",
        f"{count} dead-lettered {window}, on: {', '.join(sorted(set(recent)))}.",
    )


def readiness() -> Report:
    """Every check, timed; the status is the worst of them."""
    database = _timed("database", _database)
    if database.status is Status.UNAVAILABLE:
        return Report(Status.UNAVAILABLE, [database])
    queues = list(Queue.objects.filter(enabled=True).order_by("name"))
    checks = [
        database,
        *_engine_checks(queues),
        _timed("outbox", _outbox),
        _timed("workers", lambda: _workers(queues)),
        _timed("dead letters", _dead_letters),
    ]
    worst = Status.DEGRADED if any(c.status is not Status.OK for c in checks) else Status.OK
    return Report(worst, checks)
