"""Operations pages for admins: the worker processes (refreshed every 5 s), the live lifecycle
log (an EventSource on the streams process, see ``backoffice.streams.lifecycle``), readiness
(``workers.readiness``, the checks of ``/readyz``) and the dashboard panels (workers alive and
lost, the last minute's throughput, recent failures; readiness, loaded after the page).

The panel registers itself with ``backoffice.dashboard`` when this module is imported, which
the URLconf does before any view runs.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, F, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.roles import is_admin
from backoffice.access import admin_required
from backoffice.dashboard import Panel, register_panel
from backoffice.partials import partial_for
from queues.models import Queue
from workers.models import (
    EventKind,
    Level,
    LifecycleEvent,
    WorkerProcess,
    WorkerState,
    heartbeat_seconds,
    lost_after,
)
from workers.readiness import Status, readiness

#: The live log starts with (at most) this many of the latest events.
LIVE_BACKLOG = 100
#: The live log keeps at most this many rows in the page.
LIVE_MAX_ROWS = 500
RECENT_FAILURES = 5

#: How a worker's state is shown: label and badge class (the stylesheet's colours).
STATE_BADGES: dict[WorkerState, tuple[str, str]] = {
    WorkerState.RUNNING: ("alive", "create"),
    WorkerState.DRAINING: ("draining", "update"),
    WorkerState.LOST: ("lost", "revoked"),
    WorkerState.STOPPED: ("stopped", ""),
}


def age(seconds: float | None) -> str:
    """``4 s``, ``12 min 5 s``, ``3 h 20 min``, ``2 d 1 h``."""
    if seconds is None:
        return "—"
    whole = max(0, int(seconds))
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


# -- workers -----------------------------------------------------------------------------------


def worker_rows() -> dict[str, Any]:
    """Every worker process, the live ones first, with its state and heartbeat age."""
    now = timezone.now()
    processes = WorkerProcess.objects.select_related("queue").order_by(
        F("stopped_at").desc(nulls_first=True), "queue__name", "-started_at"
    )
    rows = []
    counts = {state: 0 for state in WorkerState}
    for process in processes:
        state = process.state
        counts[state] += 1
        label, badge = STATE_BADGES[state]
        rows.append(
            {
                "process": process,
                "state": state.value,
                "label": label,
                "badge": badge,
                "heartbeat_age": age((now - process.heartbeat_at).total_seconds()),
                "started_age": age((now - process.started_at).total_seconds()),
            }
        )
    return {
        "rows": rows,
        "alive": counts[WorkerState.RUNNING],
        "draining": counts[WorkerState.DRAINING],
        "lost": counts[WorkerState.LOST],
        "stopped": counts[WorkerState.STOPPED],
        "lost_after": age(lost_after().total_seconds()),
        "heartbeat": age(heartbeat_seconds()),
        "checked_at": now,
    }


@admin_required
@never_cache
@require_GET
def worker_list(request: HttpRequest) -> HttpResponse:
    """The worker processes; htmx asks for the ``#workers`` part again every 5 s."""
    context = {"workers": worker_rows(), "crumbs": [("Workers", None)]}
    if partial_for(request, "workers"):
        return render(request, "operations/_workers.html", context)
    return render(request, "operations/workers.html", context)


# -- the live log ------------------------------------------------------------------------------


def backlog_start() -> int:
    """The id after which the live log starts: it opens with the latest ``LIVE_BACKLOG``."""
    ids = list(
        LifecycleEvent.objects.order_by("-id").values_list("id", flat=True)[
            LIVE_BACKLOG : LIVE_BACKLOG + 1
        ]
    )
    return ids[0] if ids else 0


@admin_required
@never_cache
@require_GET
def live_log(request: HttpRequest) -> HttpResponse:
    level = request.GET.get("level", "")
    filters = {
        "queue": request.GET.get("queue", "").strip(),
        "handler": request.GET.get("handler", "").strip(),
        "level": level if level in Level.values else "",
    }
    stream_url = settings.QUAYMASTER_STREAMS_URL.rstrip("/") + "/lifecycle"
    known = set(Queue.objects.values_list("name", flat=True))
    queues = sorted(known | ({filters["queue"]} - {""}))
    context = {
        "filters": filters,
        "queues": queues,
        "levels": Level.choices,
        "stream_url": stream_url,
        "after": backlog_start(),
        "max_rows": LIVE_MAX_ROWS,
        "workers_url": reverse("operations:workers"),
        "crumbs": [("Live log", None)],
    }
    return render(request, "operations/live.html", context)


# -- the dashboard panel -----------------------------------------------------------------------


@register_panel
def workers_panel(request: HttpRequest) -> Panel | None:
    """Workers alive and lost, the last minute's processed and failed messages, and the latest
    failures with their error: for admins."""
    if not is_admin(request.user):
        return None
    try:
        links = {"workers": reverse("operations:workers"), "live": reverse("operations:live")}
    except NoReverseMatch:
        return None  # a URLconf without the operations pages (the panel would link nowhere)
    now = timezone.now()
    running = WorkerProcess.objects.filter(stopped_at__isnull=True)
    recent = now - lost_after()
    workers = running.aggregate(
        alive=Count("id", filter=Q(heartbeat_at__gte=recent)),
        lost=Count("id", filter=Q(heartbeat_at__lt=recent)),
    )
    minute = LifecycleEvent.objects.filter(at__gte=now - timedelta(minutes=1)).aggregate(
        processed=Count("id", filter=Q(kind=EventKind.COMPLETE)),
        failed=Count("id", filter=Q(kind=EventKind.FAILED)),
    )
    failures = LifecycleEvent.objects.filter(
        kind__in=[EventKind.FAILED, EventKind.DEAD_LETTERED]
    ).order_by("-id")[:RECENT_FAILURES]
    context = {"workers": workers, "minute": minute, "failures": list(failures), "links": links}
    return Panel("Workers", "operations/_dashboard.html", context)


@admin_required
@never_cache
@require_GET
def health(request: HttpRequest) -> HttpResponse:
    """The readiness checks with the queues concerned (the dashboard loads the partial)."""
    report = readiness()
    context = {"report": report, "ok": report.status is Status.OK, "crumbs": [("Health", None)]}
    if partial_for(request, "health"):
        return render(request, "operations/_health.html", context)
    return render(request, "operations/health.html", context)


@register_panel
def health_panel(request: HttpRequest) -> Panel | None:
    """Readiness, for admins: loaded after the page (an engine that does not answer takes
    up to its deadline)."""
    if not is_admin(request.user):
        return None
    try:
        url = reverse("operations:health")
    except NoReverseMatch:
        return None
    return Panel("Health", "operations/_health_panel.html", {"url": url})
