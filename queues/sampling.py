"""The queues' sampled metrics: the outbox backlog per queue, and each enabled queue's figures
as its engine reports them (``Backend.stats()``). ``QueuesConfig.ready`` registers both with
``quaymaster.metrics``; a process that samples (``relay --metrics-port``) runs them every
``QUAYMASTER_METRICS_SAMPLE_SECONDS`` from its sampling thread.

* Outbox: one grouped query over the pending and failed rows (published rows are not read).
* Engines: each queue is asked from a daemon thread of its own with the backend's network
  timeouts shortened to ``ENGINE_TIMEOUT``, and the round waits at most ``ENGINE_DEADLINE``:
  an engine that does not answer by then is ``quaymaster_engine_up 0`` and keeps its last
  figures. A queue whose previous ask still hangs is not asked again, so a dead broker costs
  one thread per queue, never a pile of them, and never holds a scrape (scrapes read the
  gauges only). A queue whose engine did not answer is asked again after a back-off that
  doubles up to ``MAX_BACKOFF`` (its client's connection errors would fill the log otherwise).
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from django.db import close_old_connections, connections
from django.db.models import Count, Min, Q
from django.utils import timezone
from prometheus_client import Gauge

from quaymaster import metrics
from queues.models import OutboxMessage, OutboxState, Queue
from queues.services import LiveStats, live_stats

#: Seconds each engine call may take, and the most one sampling round waits for the engines.
ENGINE_TIMEOUT = 3.0
ENGINE_DEADLINE = 5.0
#: The longest wait, in seconds, before asking an engine that did not answer again.
MAX_BACKOFF = 300.0

_ENGINE_GAUGES = {
    "depth": metrics.ENGINE_DEPTH,
    "in_flight": metrics.ENGINE_IN_FLIGHT,
    "dead_letters": metrics.ENGINE_DEAD_LETTERS,
    "lag": metrics.ENGINE_CONSUMER_LAG,
    "consumers": metrics.ENGINE_CONSUMERS,
}

#: Label sets set by the last round, to drop those of queues since deleted or disabled.
_outbox_labels: set[str] = set()
_engine_labels: set[tuple[str, str]] = set()
#: Engine asks still running, by queue id (a hung broker's thread stays here until it ends).
_asking: dict[int, threading.Thread] = {}
#: Queues whose engine did not answer: (failures in a row, monotonic time of the next ask).
_backing_off: dict[int, tuple[int, float]] = {}


def sample_outbox() -> None:
    close_old_connections()
    try:
        names = dict(Queue.objects.values_list("pk", "name"))
        pending = Q(state=OutboxState.PENDING)
        rows = (
            OutboxMessage.objects.filter(state__in=[OutboxState.PENDING, OutboxState.FAILED])
            .values("queue_id")
            .annotate(
                pending=Count("pk", filter=pending),
                failed=Count("pk", filter=Q(state=OutboxState.FAILED)),
                oldest=Min("created_at", filter=pending),
            )
        )
        figures: dict[int, dict[str, Any]] = {row["queue_id"]: dict(row) for row in rows}
        now = timezone.now()
    finally:
        close_old_connections()
    seen = set()
    for pk, name in names.items():
        row = figures.get(pk, {})
        oldest = row.get("oldest")
        metrics.OUTBOX_PENDING.labels(name).set(row.get("pending", 0))
        metrics.OUTBOX_FAILED.labels(name).set(row.get("failed", 0))
        metrics.OUTBOX_OLDEST_AGE.labels(name).set(
            max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
        )
        seen.add(name)
    for gone in _outbox_labels - seen:
        for gauge in (metrics.OUTBOX_PENDING, metrics.OUTBOX_FAILED, metrics.OUTBOX_OLDEST_AGE):
            _remove(gauge, gone)
    _outbox_labels.clear()
    _outbox_labels.update(seen)


def sample_engines() -> None:
    close_old_connections()
    try:
        queues = list(Queue.objects.filter(enabled=True))
    finally:
        close_old_connections()
    answers: dict[int, LiveStats] = {}
    asked: dict[int, threading.Thread] = {}
    now = time.monotonic()
    for queue in queues:
        if queue.pk in _asking and _asking[queue.pk].is_alive():
            continue  # the previous ask still hangs: it stays down
        if _backing_off.get(queue.pk, (0, now))[1] > now:
            continue  # down at the last ask: it stays down until the back-off ends
        thread = threading.Thread(
            target=_ask, args=(queue, answers), name=f"metrics-{queue.name}", daemon=True
        )
        _asking[queue.pk] = asked[queue.pk] = thread
        thread.start()
    deadline = time.monotonic() + ENGINE_DEADLINE
    for thread in asked.values():
        thread.join(max(0.0, deadline - time.monotonic()))
    seen = set()
    for queue in queues:
        labels = (queue.name, queue.type)
        seen.add(labels)
        answer = answers.get(queue.pk)
        if answer is None or answer.stats is None:
            metrics.ENGINE_UP.labels(*labels).set(0)
            if queue.pk in asked:  # not one held back: the back-off grows
                failures = _backing_off.get(queue.pk, (0, 0.0))[0] + 1
                wait = min(MAX_BACKOFF, ENGINE_DEADLINE * 2**failures)
                _backing_off[queue.pk] = (failures, time.monotonic() + wait)
            continue
        _backing_off.pop(queue.pk, None)
        metrics.ENGINE_UP.labels(*labels).set(1)
        for field, value in answer.stats.as_dict().items():
            if value is not None:
                _ENGINE_GAUGES[field].labels(*labels).set(value)
    for gone in _engine_labels - seen:
        for gauge in (metrics.ENGINE_UP, *_ENGINE_GAUGES.values()):
            _remove(gauge, *gone)
    _engine_labels.clear()
    _engine_labels.update(seen)
    for pk in [pk for pk, thread in _asking.items() if not thread.is_alive()]:
        del _asking[pk]


def _ask(queue: Queue, answers: dict[int, LiveStats]) -> None:
    try:
        answers[queue.pk] = live_stats(queue, timeout=ENGINE_TIMEOUT)
    except Exception:  # an engine's failure in whatever form its client raises it: down
        pass
    finally:
        connections.close_all()  # this thread's own (a database queue's count)


def _remove(gauge: Gauge, *labels: str) -> None:
    with contextlib.suppress(KeyError):
        gauge.remove(*labels)
