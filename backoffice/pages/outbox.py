"""Admin pages for what feeds the outbox and how it drains: each queue's table links (which
record events become messages, with a "which records match" preview of the filter), the
outbox monitor with "retry now", and the dashboard panel (outbox backlog, dead letters).

The panel registers itself with ``backoffice.dashboard`` when this module is imported, which
the URLconf does before any view runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Min, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from accounts.roles import is_admin
from backoffice.access import admin_required, get_for
from backoffice.dashboard import Panel, register_panel
from backoffice.forms.queues import LinkForm
from backoffice.forms.schema import apply_errors
from backoffice.pages.queues import queue_context
from backoffice.values import record_label
from queues import services
from queues.backends import backend_class
from queues.models import (
    DatabaseMessage,
    MessageState,
    OutboxMessage,
    OutboxState,
    Queue,
    QueueLink,
)
from queues.relay import outbox_stats
from zstorage.errors import QueryError
from zstorage.models import Table
from zstorage.reads import fields_of, records_for

#: Outbox rows the monitor lists per state, newest first.
LATEST_ROWS = 20
#: Records the filter preview shows.
PREVIEW_RECORDS = 5


def age(seconds: float | None) -> str:
    """``4 s``, ``12 min 5 s``, ``3 h 20 min``, ``2 d 1 h``: a backlog's age at a glance."""
    if seconds is None:
        return "—"
    whole = int(seconds)
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


def oldest_pending_age(stats: Mapping[str, Any]) -> str:
    """``outbox_stats()``'s oldest pending age, as ``age`` words it."""
    return age(stats.get("oldest_pending_seconds"))


# -- table links ---------------------------------------------------------------------------------


@admin_required
@require_http_methods(["GET", "POST"])
def link_list(request: HttpRequest, queue_id: int) -> HttpResponse:
    """The queue's links, and a form to add one."""
    queue = get_for(request, Queue, pk=queue_id)
    form = LinkForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            link = services.save_link(form.fill(QueueLink(queue=queue)))
        except ValidationError as exc:
            apply_errors(form, exc.message_dict)
        else:
            messages.success(request, f"{link.table.name} now publishes to {queue.name}.")
            return redirect("backoffice:queue-links", queue.pk)
    links = [
        (link, json.dumps(link.filter, ensure_ascii=False))
        for link in queue.links.select_related("table").order_by("table__name", "id")
    ]
    context = queue_context(queue, "links", form=form, links=links, tables=Table.objects.exists())
    return render(request, "queues/links.html", context, status=422 if form.errors else 200)


@admin_required
@require_http_methods(["GET", "POST"])
def link_edit(request: HttpRequest, queue_id: int, link_id: int) -> HttpResponse:
    queue = get_for(request, Queue, pk=queue_id)
    link = get_for(request, QueueLink.objects.select_related("table"), pk=link_id, queue=queue)
    form = LinkForm.for_link(link, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.save_link(form.fill(link))
        except ValidationError as exc:
            apply_errors(form, exc.message_dict)
            link.refresh_from_db()
        else:
            messages.success(request, "Link saved.")
            return redirect("backoffice:queue-links", queue.pk)
    context = queue_context(queue, "links", form=form, link=link)
    context["crumbs"][-1:] = [
        ("Table links", reverse("backoffice:queue-links", args=[queue.pk])),
        (f"{link.table.name} → {link.handler}", None),
    ]
    return render(request, "queues/link_edit.html", context, status=422 if form.errors else 200)


@admin_required
@require_POST
def link_delete(request: HttpRequest, queue_id: int, link_id: int) -> HttpResponse:
    link = get_for(request, QueueLink, pk=link_id, queue_id=queue_id)
    services.delete_link(link)
    messages.success(request, "Link deleted: that table's events no longer reach this queue.")
    return redirect("backoffice:queue-links", queue_id)


@admin_required
@require_POST
def link_preview(request: HttpRequest, queue_id: int) -> HttpResponse:
    """Which of the chosen table's records the typed filter matches (htmx, from the form)."""
    get_for(request, Queue, pk=queue_id)
    form = LinkForm(request.POST)
    form.is_valid()  # the table and the filter are all the preview needs
    table = form.cleaned_data.get("table")
    context: dict[str, Any] = {"table": table, "problem": ""}
    if table is None:
        context["problem"] = "Choose a table first."
    elif "filter" in form.errors:
        context["problem"] = " ".join(str(e) for e in form.errors["filter"])
    else:
        fields = fields_of(table)
        try:
            matching = records_for(table, query=form.cleaned_data.get("filter") or None)
            context.update(
                count=matching.count(),
                total=table.records.count(),
                examples=[
                    record_label(r, fields, table.display_field) for r in matching[:PREVIEW_RECORDS]
                ],
            )
        except QueryError as exc:
            context["problem"] = exc.message
    return render(request, "queues/_link_preview.html", context)


# -- the outbox monitor --------------------------------------------------------------------------


@admin_required
def outbox_monitor(request: HttpRequest) -> HttpResponse:
    stats = outbox_stats()
    per_queue = (
        Queue.objects.annotate(
            pending=Count("outbox", filter=Q(outbox__state=OutboxState.PENDING)),
            failed=Count("outbox", filter=Q(outbox__state=OutboxState.FAILED)),
            oldest=Min("outbox__created_at", filter=Q(outbox__state=OutboxState.PENDING)),
            next_try=Min("outbox__available_at", filter=Q(outbox__state=OutboxState.PENDING)),
        )
        .filter(Q(pending__gt=0) | Q(failed__gt=0))
        .order_by("name")
    )

    now = timezone.now()
    queues = [
        (queue, age((now - queue.oldest).total_seconds() if queue.oldest else None))
        for queue in per_queue
    ]
    rows = OutboxMessage.objects.select_related("queue").order_by("-id")
    context = {
        "stats": stats,
        "oldest_age": oldest_pending_age(stats),
        "per_queue": queues,
        "pending_rows": rows.filter(state=OutboxState.PENDING)[:LATEST_ROWS],
        "failed_rows": rows.filter(state=OutboxState.FAILED)[:LATEST_ROWS],
        "latest": LATEST_ROWS,
        "crumbs": [("Outbox", None)],
    }
    return render(request, "queues/outbox.html", context)


@admin_required
@require_POST
def outbox_retry(request: HttpRequest) -> HttpResponse:
    """Retry now: one queue's rows (``queue``), or every queue's."""
    queue_id = request.POST.get("queue")
    queue = get_for(request, Queue, pk=queue_id) if queue_id else None
    due, requeued = services.retry_outbox(queue)
    where = f" of {queue.name}" if queue else ""
    total = due + requeued
    what = f"{total} message{'' if total == 1 else 's'}{where} {'is' if total == 1 else 'are'}"
    messages.success(
        request, f"Retrying now: {what} due ({due} pending, {requeued} failed before)."
    )
    return redirect("backoffice:outbox")


# -- the dashboard panel -------------------------------------------------------------------------


@register_panel
def queues_panel(request: HttpRequest) -> Panel | None:
    """Outbox backlog and dead letters per queue, for admins. Database queues are counted
    here (one query); the others load their count from the engine after the page, each with a
    short timeout, so a broker that is down never slows the dashboard."""
    if not is_admin(request.user):
        return None
    stats = outbox_stats()
    counted = dict(
        DatabaseMessage.objects.filter(state=MessageState.DEAD)
        .values("queue")
        .annotate(n=Count("id"))
        .values_list("queue", "n")
    )
    queues = [
        (queue, counted.get(queue.pk, 0) if backend_class(queue.type).in_database else None)
        for queue in Queue.objects.order_by("name")
    ]
    context = {
        "outbox": stats,
        "oldest_age": oldest_pending_age(stats),
        "queues": queues,
    }
    return Panel("Queues and outbox", "queues/_dashboard.html", context)
