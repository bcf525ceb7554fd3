"""``/healthz`` (liveness) and ``/readyz`` (readiness).

``/healthz`` answers 200 as long as the process answers: it asks nothing else, so a slow
database or broker never gets a live process restarted. ``/readyz`` runs the readiness checks
(``workers.readiness``: the database, each engine the queues use, the outbox, the workers,
recent dead letters), each with its latency: 200 ``ok`` or ``degraded`` (with the reasons), 503
``unavailable`` when the database does not answer. Orchestrators poll both without
credentials, so neither says anything secret: no host, credential or driver text (those go to
the log); the queues concerned are named only to an admin.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.roles import is_admin
from workers.readiness import Status, readiness


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    report = readiness()  # logs a database's failure with the driver's words
    body = report.as_json(detail=is_admin(getattr(request, "user", None)))
    return JsonResponse(body, status=503 if report.status is Status.UNAVAILABLE else 200)
