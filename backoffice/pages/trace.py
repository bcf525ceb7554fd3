"""Message traces in the back-office: a search box that takes any id of a message (ours, an
SQS MessageId, a database row, ``topic:partition:offset``) and a message's page with its
timeline (``workers.trace``). The record page shows the same timelines per version.

Every logged-in user may search: admins find every message, others only the record events of
tables granted to them (anything else answers as if it did not exist).
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from accounts.roles import is_admin
from workers.trace import find_messages, may_see, message_timeline

#: The longest text the search box reads.
MAX_QUERY = 300


@require_GET
def message_search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:MAX_QUERY]
    found = find_messages(request.user, query) if query else []
    if len(found) == 1:
        return redirect("backoffice:message", found[0].message_id)
    context = {
        "query": query,
        "found": found,
        "admin": is_admin(request.user),
        "crumbs": [("Messages", None)],
    }
    return render(request, "trace/search.html", context)


@require_GET
def message_detail(request: HttpRequest, message_id: str) -> HttpResponse:
    timeline = message_timeline(message_id)
    if timeline is None or not may_see(request.user, timeline):
        raise Http404("No message with this id.")
    context = {
        "timeline": timeline,
        "admin": is_admin(request.user),
        "crumbs": [("Messages", reverse("backoffice:messages")), (timeline.message_id, None)],
    }
    return render(request, "trace/message.html", context)
