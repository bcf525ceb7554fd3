"""Replays for admins: the list, the form that previews and starts one (a link, a selection,
a rate), and a replay's page with its progress (polled by htmx while it runs) and Cancel.

Everything goes through ``queues.replay.service``, as the REST API and ``manage.py replay``
do; a refusal is shown beside its input or as a message, never a 500. The scheduler's
``queues.replays`` tick runs what is started here.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from backoffice.access import admin_required, get_for
from backoffice.forms.replays import ReplayForm
from backoffice.forms.schema import apply_errors
from backoffice.partials import partial_for
from queues.errors import QueueError
from queues.models.replay import Replay, ReplayState
from queues.replay import service
from queues.replay.errors import InvalidReplay, ReplayTooLarge

PER_PAGE = 50
#: How a replay's state is shown: the stylesheet's badge colours.
STATE_BADGES = {
    ReplayState.RUNNING: "update",
    ReplayState.COMPLETED: "create",
    ReplayState.CANCELLED: "",
    ReplayState.FAILED: "revoked",
}


@admin_required
@require_GET
def replay_list(request: HttpRequest) -> HttpResponse:
    replays = Replay.objects.select_related("table", "queue", "created_by").order_by("-id")
    page = Paginator(replays, PER_PAGE).get_page(request.GET.get("page"))
    rows = [(replay, STATE_BADGES.get(ReplayState(replay.state), "")) for replay in page]
    return render(
        request,
        "queues/replays.html",
        {"page": page, "rows": rows, "crumbs": [("Replays", None)]},
    )


@admin_required
@require_http_methods(["GET", "POST"])
def replay_create(request: HttpRequest) -> HttpResponse:
    """Preview (count and time) or start; both check the same way."""
    form = ReplayForm(request.POST or None, initial={"link": request.GET.get("link")})
    preview = None
    if request.method == "POST" and form.is_valid():
        link = form.cleaned_data["link"]
        selection, rate = form.selection(), form.cleaned_data["rate"]
        try:
            if "start" in request.POST:
                replay = service.start(link, selection, rate, user=request.user, request=request)
                messages.success(request, f"Replay {replay.pk} started: {replay.total:,} records.")
                return redirect("backoffice:replay", replay.pk)
            preview = service.preview(link, selection, rate)
        except InvalidReplay as error:
            apply_errors(form, error.errors, rename={"selection": "filter", "body": "link"})
        except ReplayTooLarge as error:
            form.add_error("filter", error.message)
    return render(
        request,
        "queues/replay_form.html",
        {
            "form": form,
            "preview": preview,
            "crumbs": [("Replays", reverse("backoffice:replays")), ("New replay", None)],
        },
    )


@admin_required
@never_cache
@require_GET
def replay_detail(request: HttpRequest, replay_id: int) -> HttpResponse:
    replay = get_for(
        request, Replay.objects.select_related("table", "queue", "created_by", "link"), pk=replay_id
    )
    context = {
        "replay": replay,
        "badge": STATE_BADGES.get(ReplayState(replay.state), ""),
        "selection": json.dumps(replay.selection, ensure_ascii=False),
        "eta": None if replay.ended else round((replay.total - replay.written) / replay.rate),
        "crumbs": [("Replays", reverse("backoffice:replays")), (f"Replay {replay.pk}", None)],
    }
    if partial_for(request, "replay-progress"):
        return render(request, "queues/_replay_progress.html", context)
    return render(request, "queues/replay.html", context)


@admin_required
@require_POST
def replay_cancel(request: HttpRequest, replay_id: int) -> HttpResponse:
    try:
        replay = service.cancel(replay_id, request=request)
    except QueueError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Replay {replay.pk} cancelled after {replay.written:,} records.")
    return redirect("backoffice:replay", replay_id)
