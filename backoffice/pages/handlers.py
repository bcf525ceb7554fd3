"""The Handlers page (admins): what this deployment can run, and what uses it.

Every handler the workers would load here (``workers.registry.registered_names``: each app's
``handlers`` module and ``QUAYMASTER_HANDLER_MODULES``) with its docstring, the queues whose
allowed handlers name it, the table links that send it messages, and when a worker last ran it
(the lifecycle log, so as far back as its retention); then the jobs with their descriptions and
last run. Names used by links or allow-lists that no module here registers are listed apart:
a typo, or a handler that runs only on workers elsewhere.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Max, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from backoffice.access import admin_required
from jobs.models import JobRun
from jobs.registry import registry as jobs
from queues.models import Queue, QueueLink
from queues.services import RESERVED_HANDLERS
from workers.models import EventKind, LifecycleEvent
from workers.registry import Handler, registered_names


def known_handlers() -> list[str]:
    """The handlers this deployment's modules register (what a worker started here runs);
    the handler inputs offer them."""
    try:
        return registered_names().names()
    except Exception:  # a handler module that fails to import: workers say so, not the pages
        return []


#: Lifecycle events that mean a worker ran the handler.
RAN = [EventKind.COMPLETE, EventKind.FAILED, EventKind.RETRIED, EventKind.DEAD_LETTERED]


@dataclass
class Use:
    """Where a handler name is used: the queues allowing it by name, the links naming it."""

    queues: list[Queue] = field(default_factory=list)
    links: list[QueueLink] = field(default_factory=list)


@dataclass
class HandlerRow:
    name: str
    handler: Handler | None
    use: Use
    last_ran: datetime | None = None
    last_queue: str = ""
    reserved: str = ""


def uses() -> dict[str, Use]:
    """Each handler name used by a queue's allow-list or a table link."""
    found: dict[str, Use] = defaultdict(Use)
    for queue in Queue.objects.exclude(allowed_handlers__isnull=True).order_by("name"):
        for name in queue.allowed_handlers or []:
            found[name].queues.append(queue)
    for link in QueueLink.objects.select_related("table", "queue").order_by("queue__name", "pk"):
        found[link.handler].links.append(link)
    return found


def last_runs(names: list[str]) -> dict[str, tuple[datetime, str]]:
    """When (and on which queue) a worker last ran each handler, from the lifecycle log."""
    latest = (
        LifecycleEvent.objects.filter(handler__in=names, kind__in=RAN)
        .values("handler")
        .annotate(at=Max("at"))
    )
    newest = {row["handler"]: row["at"] for row in latest}
    if not newest:
        return {}
    # The queues of those newest events, in one more query.
    which = Q()
    for handler, at in newest.items():
        which |= Q(handler=handler, at=at)
    queues = dict(LifecycleEvent.objects.filter(which).values_list("handler", "queue"))
    return {handler: (at, queues.get(handler, "")) for handler, at in newest.items()}


def catalogue() -> tuple[list[HandlerRow], list[HandlerRow]]:
    """The registered handlers, and the names used but registered nowhere here."""
    registry = registered_names()
    used = uses()
    names = registry.names()
    runs = last_runs(sorted(set(names) | set(used)))

    def row(name: str, use: Use, handler: Handler | None) -> HandlerRow:
        last_ran, last_queue = runs.get(name, (None, ""))
        return HandlerRow(name, handler, use, last_ran, last_queue, RESERVED_HANDLERS.get(name, ""))

    registered = [row(name, used.get(name, Use()), registry.find(name)) for name in names]
    unknown = [row(name, use, None) for name, use in sorted(used.items()) if name not in registry]
    return registered, unknown


def job_rows() -> list[dict[str, Any]]:
    latest = dict(JobRun.objects.values_list("job").annotate(at=Max("created_at")))
    return [{"job": job, "last_run": latest.get(job.name)} for job in jobs.all()]


@admin_required
@require_GET
def handler_list(request: HttpRequest) -> HttpResponse:
    registered, unknown = catalogue()
    return render(
        request,
        "operations/handlers.html",
        {
            "handlers": registered,
            "unknown": unknown,
            "jobs": job_rows(),
            "crumbs": [("Handlers", None)],
        },
    )
