"""Admin pages for webhook endpoints: the list, create, edit, delete, and a test POST.

An endpoint is where the built-in ``webhook`` handler may post, so these pages are the only
place a destination or a signing secret is chosen: a message names an endpoint and brings its
payload, nothing more. The secret is write-only (pages say only whether one is set). Saving goes
through ``workers.endpoints``, which validates the endpoint and removes the stored secret when
the URL moves to another host without a new one.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from backoffice.access import admin_required, get_for
from backoffice.forms.webhooks import WebhookEndpointForm
from backoffice.partials import partial_for
from queues.models import Queue
from workers.endpoints import create_endpoint, delete_endpoint, deliver, update_endpoint
from workers.errors import Permanent, WebhookFailed
from workers.models import WebhookEndpoint

LIST = ("Webhooks", "backoffice:webhooks")


def _crumbs(*more: tuple[str, str | None]) -> list[tuple[str, str | None]]:
    return [(LIST[0], reverse(LIST[1])), *more]


@admin_required
@require_GET
def webhook_list(request: HttpRequest) -> HttpResponse:
    endpoints = WebhookEndpoint.objects.prefetch_related(
        Prefetch("queues", queryset=Queue.objects.order_by("name"))
    )
    return render(
        request,
        "webhooks/list.html",
        {"endpoints": endpoints, "crumbs": [(LIST[0], None)]},
    )


@admin_required
@require_http_methods(["GET", "POST"])
def webhook_create(request: HttpRequest) -> HttpResponse:
    form = WebhookEndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        values = form.values()
        try:
            endpoint = create_endpoint(secret=values.pop("secret") or "", **values)
        except ValidationError as exc:
            form.apply(exc.message_dict)
        else:
            messages.success(
                request,
                f"Webhook endpoint {endpoint.name} created. Messages name it as "
                f'"endpoint": "{endpoint.name}".',
            )
            return redirect("backoffice:webhooks")
    return render(
        request,
        "webhooks/form.html",
        {"form": form, "endpoint": None, "crumbs": _crumbs(("New endpoint", None))},
        status=422 if form.errors else 200,
    )


@admin_required
@require_http_methods(["GET", "POST"])
def webhook_edit(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = get_for(request, WebhookEndpoint, pk=endpoint_id)
    form = WebhookEndpointForm(request.POST or None, endpoint=endpoint)
    if request.method == "POST" and form.is_valid():
        try:
            cleared = update_endpoint(endpoint, **form.values())
        except ValidationError as exc:
            form.apply(exc.message_dict)
            endpoint.refresh_from_db()  # the service set the refused values on it
        else:
            messages.success(request, f"Webhook endpoint {endpoint.name} saved.")
            if cleared:
                messages.warning(
                    request,
                    "The URL moved to another host, so the stored signing secret was removed: "
                    "its POSTs are unsigned until you type a secret again.",
                )
            return redirect("backoffice:webhooks")
    return _edit_page(request, endpoint, form, status=422 if form.errors else 200)


def _edit_page(
    request: HttpRequest,
    endpoint: WebhookEndpoint,
    form: WebhookEndpointForm | None = None,
    *,
    result: dict[str, Any] | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {
        "form": form or WebhookEndpointForm(endpoint=endpoint),
        "endpoint": endpoint,
        "result": result,
        "crumbs": _crumbs((endpoint.name, None)),
    }
    return render(request, "webhooks/form.html", context, status=status)


@admin_required
@require_POST
def webhook_test(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    """POST ``{"test": true, "endpoint": <name>}`` to the endpoint as a message would (the same
    address check, signature and timeout) and show what came back."""
    endpoint = get_for(request, WebhookEndpoint, pk=endpoint_id)
    payload = {"test": True, "endpoint": endpoint.name}
    try:
        answer = deliver(endpoint, payload, message_id=f"test-{uuid.uuid4()}")
    except (Permanent, WebhookFailed, ImproperlyConfigured) as exc:
        result = {"operation": "webhook-test", "ok": False, "detail": str(exc)}
    else:
        detail = (
            f"{endpoint.host} ({answer.address}) answered {answer.status} {answer.reason} in "
            f"{answer.seconds * 1000:.0f} ms{'' if endpoint.has_secret else ', unsigned'}."
        )
        result = {"operation": "webhook-test", "ok": True, "detail": detail}
    if partial_for(request):
        return render(request, "queues/_result.html", {"result": result})
    return _edit_page(request, endpoint, result=result)


@admin_required
@require_POST
def webhook_delete(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = get_for(request, WebhookEndpoint, pk=endpoint_id)
    name = endpoint.name
    delete_endpoint(endpoint)
    messages.success(
        request,
        f"Webhook endpoint {name} deleted: messages that name it are dead-lettered from now on.",
    )
    return redirect("backoffice:webhooks")
