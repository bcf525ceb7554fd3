"""Admin pages for queues: the list with live figures, create and edit, and the operations
(check the connection, provision, a test message, enable or disable, purge). The dead-letter
browser is ``backoffice.pages.dead_letters``.

Every engine call goes through ``queues.services`` or ``queues.dead_letters``, inside
``EngineCall``: a broker that fails or does not answer is something the page shows
(``QueueError`` carries a reason worded for a person), never a 500. Live figures load after
the page, one request per queue, so one slow broker holds up only its own row.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from backoffice.access import admin_required, get_for
from backoffice.forms.queues import QueueForm, TestMessageForm
from backoffice.pages.handlers import known_handlers
from backoffice.partials import partial_for
from backoffice.problems import EngineCall
from queues import pausing, services
from queues.models import Queue

TABS = [
    ("settings", "Settings", "backoffice:queue"),
    ("dead-letters", "Dead letters", "backoffice:dead-letters"),
    ("links", "Table links", "backoffice:queue-links"),
]
#: Stats for the dashboard and the purge page wait at most this long for a broker.
QUICK_TIMEOUT = 2.0
STATS_VIEWS = {
    "row": "queues/_queue_stats.html",
    "card": "queues/_queue_figures.html",
    "dead": "queues/_dead_count.html",
}


def queue_context(queue: Queue, tab: str, **extra: Any) -> dict[str, Any]:
    """What every page of one queue shares: breadcrumbs and the tabs."""
    label = next(label for name, label, _ in TABS if name == tab)
    return {
        "queue": queue,
        "known_handlers": sorted({*known_handlers(), *(queue.allowed_handlers or [])}),
        "tab": tab,
        "tabs": [(name, text, reverse(url, args=[queue.pk])) for name, text, url in TABS],
        "crumbs": [
            ("Queues", reverse("backoffice:queues")),
            (queue.name, reverse("backoffice:queue", args=[queue.pk])),
            (label, None),
        ],
        **extra,
    }


# -- the list and its live figures ---------------------------------------------------------------


@admin_required
@require_GET
def queue_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "queues/list.html",
        {"queues": Queue.objects.order_by("name"), "crumbs": [("Queues", None)]},
    )


@admin_required
@require_GET
def queue_stats(request: HttpRequest, queue_id: int) -> HttpResponse:
    """A queue's live figures as a list row, a card, or a dead-letter count (the dashboard)."""
    queue = get_for(request, Queue, pk=queue_id)
    view = request.GET.get("view", "row")
    timeout = QUICK_TIMEOUT if view == "dead" else None
    return render(
        request,
        STATS_VIEWS.get(view, STATS_VIEWS["row"]),
        {"queue": queue, "live": services.live_stats(queue, timeout=timeout)},
    )


# -- create and edit -----------------------------------------------------------------------------


@admin_required
@require_http_methods(["GET", "POST"])
def queue_create(request: HttpRequest) -> HttpResponse:
    form = QueueForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        values = form.values()
        try:
            queue = services.create_queue(secret=values.pop("secret") or "", **values)
        except ValidationError as exc:
            form.apply(exc.message_dict)
        else:
            messages.success(request, f"Queue {queue.name} created. Check its connection next.")
            return redirect("backoffice:queue", queue.pk)
    return render(
        request,
        "queues/form.html",
        {"form": form, "crumbs": [("Queues", reverse("backoffice:queues")), ("New queue", None)]},
        status=422 if form.errors else 200,
    )


@admin_required
@require_http_methods(["GET", "POST"])
def queue_detail(request: HttpRequest, queue_id: int) -> HttpResponse:
    """The queue's settings (edit) and its operations."""
    queue = get_for(request, Queue, pk=queue_id)
    form = QueueForm(request.POST or None, queue=queue)
    if request.method == "POST" and form.is_valid():
        values = form.values()
        try:
            services.update_queue(queue, **values)
        except ValidationError as exc:
            form.apply(exc.message_dict)
            queue.refresh_from_db()  # the service set the refused values on it
        else:
            messages.success(request, "Queue saved.")
            return redirect("backoffice:queue", queue.pk)
    return _detail(request, queue, form=form, status=422 if form.errors else 200)


def _detail(
    request: HttpRequest,
    queue: Queue,
    *,
    form: QueueForm | None = None,
    test_form: TestMessageForm | None = None,
    results: dict[str, Any] | None = None,
    status: int = 200,
) -> HttpResponse:
    context = queue_context(
        queue,
        "settings",
        form=form or QueueForm(queue=queue),
        test_form=test_form or TestMessageForm(),
        results=results or {},
    )
    return render(request, "queues/detail.html", context, status=status)


# -- operations ----------------------------------------------------------------------------------


def _answer(
    request: HttpRequest,
    queue: Queue,
    operation: str,
    result: dict[str, Any],
    *,
    test_form: TestMessageForm | None = None,
    status: int = 200,
) -> HttpResponse:
    """htmx gets the box it asked for alone; a plain form post gets the whole page."""
    result = {"operation": operation, **result}
    if not partial_for(request):
        results = {operation: result}
        return _detail(request, queue, test_form=test_form, results=results, status=status)
    if test_form is not None:
        context = {"queue": queue, "test_form": test_form, "result": result}
        return render(request, "queues/_test_message.html", context, status=status)
    return render(request, "queues/_result.html", {"result": result}, status=status)


@admin_required
@require_POST
def queue_check(request: HttpRequest, queue_id: int) -> HttpResponse:
    queue = get_for(request, Queue, pk=queue_id)
    with EngineCall() as call:
        check = services.check_connection(queue)
    if not call.ok:
        return _answer(request, queue, "check", {"ok": False, "detail": call.problem})
    detail = check.detail
    if check.provisioned is False:
        detail += " — provision it to create the queue there."
    return _answer(request, queue, "check", {"ok": check.ok, "detail": detail})


@admin_required
@require_POST
def queue_provision(request: HttpRequest, queue_id: int) -> HttpResponse:
    queue = get_for(request, Queue, pk=queue_id)
    with EngineCall() as call:
        services.provision(queue)
    if not call.ok:
        return _answer(request, queue, "provision", {"ok": False, "detail": call.problem})
    detail = "The queue and its dead-letter (and retry) companions exist on the engine."
    return _answer(request, queue, "provision", {"ok": True, "detail": detail})


@admin_required
@require_POST
def queue_test_message(request: HttpRequest, queue_id: int) -> HttpResponse:
    """Publish ``{"handler": …, "test": true, …payload}`` and show what the broker answered."""
    queue = get_for(request, Queue, pk=queue_id)
    form = TestMessageForm(request.POST)
    if form.is_valid() and not queue.allows_handler(form.cleaned_data["handler"]):
        allowed = ", ".join(queue.allowed_handlers or [])
        form.add_error("handler", f"This queue allows only these handlers: {allowed}.")
    elif form.is_valid() and services.unknown_handlers(queue, [form.cleaned_data["handler"]]):
        form.add_error("handler", services.UNKNOWN_HANDLER)
    if not form.is_valid():
        return _answer(request, queue, "test", {}, test_form=form, status=422)
    with EngineCall() as call:
        (published,) = services.publish(queue, [{**form.body(), "test": True}])
    if not call.ok:
        return _answer(
            request, queue, "test", {"ok": False, "detail": call.problem}, test_form=form
        )
    answer = {**published.as_response(), "queue-id": queue.pk}  # as the publish API answers
    return _answer(
        request,
        queue,
        "test",
        {"ok": True, "detail": "Published.", "answer": json.dumps(answer, indent=2)},
        test_form=form,
    )


@admin_required
@require_POST
def queue_toggle(request: HttpRequest, queue_id: int) -> HttpResponse:
    queue = get_for(request, Queue, pk=queue_id)
    services.set_enabled(queue, not queue.enabled)
    if queue.enabled:
        messages.success(request, f"Queue {queue.name} enabled.")
    else:
        messages.warning(
            request,
            f"Queue {queue.name} disabled: the API refuses to publish to it, record changes "
            "are not queued for it, and the relay holds back what its outbox already has.",
        )
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, {request.get_host()}):
        back = reverse("backoffice:queue", args=[queue.pk])
    return redirect(back)


@admin_required
@require_POST
def queue_resume(request: HttpRequest, queue_id: int) -> HttpResponse:
    """Clear a pause after consecutive failures: workers fetch again, its alert resolves."""
    queue = get_for(request, Queue, pk=queue_id)
    if pausing.resume(queue, request.user):
        messages.success(request, f"Queue {queue.name} resumed: its workers fetch again.")
    else:
        messages.info(request, f"Queue {queue.name} was not paused.")
    return redirect("backoffice:queue", queue.pk)


@admin_required
@require_http_methods(["GET", "POST"])
def queue_purge(request: HttpRequest, queue_id: int) -> HttpResponse:
    """Purging cannot be undone: a page says what it drops, and only a confirmed post does."""
    queue = get_for(request, Queue, pk=queue_id)
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        with EngineCall(request, failed="The queue was not purged") as call:
            dropped = services.purge(queue)
        if call.ok:
            count = (
                "every message"
                if dropped is None
                else ngettext("%d message", "%d messages", dropped) % dropped
            )
            messages.success(request, f"Queue {queue.name} purged: {count} dropped.")
            return redirect("backoffice:queue", queue.pk)
    elif request.method == "POST":
        messages.error(request, "Tick the confirmation to purge the queue.")
    context = queue_context(queue, "settings", live=services.live_stats(queue, QUICK_TIMEOUT))
    context["crumbs"][-1] = ("Purge", None)
    return render(request, "queues/purge.html", context)
