"""``/healthz``: is the database answering, and which engines is this deployment configured for.

Orchestrators poll it without credentials, so it says nothing secret: engine addresses are
reported as configured or not, never with credentials.
"""

from __future__ import annotations

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


def _database_status() -> dict[str, object]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return {"ok": False, "vendor": connection.vendor, "error": str(exc).strip()}
    return {"ok": True, "vendor": connection.vendor}


def configured_services() -> dict[str, bool]:
    return {
        "database_queue": True,
        "kafka": bool(settings.KAFKA_BOOTSTRAP_SERVERS),
        "sqs": bool(settings.SQS_ENDPOINT_URL),
        "rabbitmq": bool(settings.AMQP_URL),
    }


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    database = _database_status()
    body = {
        "status": "ok" if database["ok"] else "unavailable",
        "database": database,
        "services": configured_services(),
    }
    return JsonResponse(body, status=200 if database["ok"] else 503)
