"""The audit trail's page for admins: the events, newest first, filtered by action, actor,
object, channel and time (``audit.filters``, the API's reading too), each with its
before/after as a list of changes; and the filtered set as a CSV file, streamed."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from audit.export import CHUNK, changes, csv_lines
from audit.filters import AuditFilters
from audit.models import AuditEvent, Via
from backoffice.access import admin_required

PER_PAGE = 50


def _choices(column: str) -> list[str]:
    """The distinct values of a column, for the filter's suggestions."""
    values = AuditEvent.objects.order_by(column).values_list(column, flat=True).distinct()
    return [v for v in values[:500] if v]


@admin_required
@never_cache
@require_GET
def audit_list(request: HttpRequest) -> HttpResponse:
    filters = AuditFilters.read(request.GET)
    events = AuditEvent.objects.none() if filters.errors else filters.apply()
    page = Paginator(events, PER_PAGE).get_page(request.GET.get("page"))
    context: dict[str, Any] = {
        "filters": filters,
        "page": page,
        "rows": [_row(event) for event in page],
        "actions": _choices("action"),
        "object_types": _choices("object_type"),
        "vias": Via.choices,
        "query": filters.query_string(),
        "crumbs": [("Audit trail", None)],
    }
    return render(request, "audit/list.html", context, status=400 if filters.errors else 200)


def _row(event: AuditEvent) -> dict[str, Any]:
    found = changes(event)
    return {"event": event, "changes": found, "changed": sum(c.changed for c in found)}


@admin_required
@require_GET
def audit_export(request: HttpRequest) -> HttpResponseBase:
    """The filtered events as CSV, streamed newest first (an export is never paged)."""
    filters = AuditFilters.read(request.GET)
    if filters.errors:  # the page, saying what to fix
        return audit_list(request)
    events = filters.apply().iterator(chunk_size=CHUNK)
    response = StreamingHttpResponse(csv_lines(events), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
    return response
