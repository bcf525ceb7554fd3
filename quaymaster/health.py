"""``/healthz``: is the database answering, and which engines is this deployment configured for.

Orchestrators poll it without credentials, so it says nothing secret: engine addresses are
reported as configured or not, never with credentials, and a database failure as a fixed
sentence (the driver's text, which may name hosts, users and databases, goes to the log).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

DATABASE_DOWN = "The database did not answer; the details are in the web process's log."


def _database_status() -> dict[str, object]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        logger.error("Health check: the database did not answer: %s", str(exc).strip())
        return {"ok": False, "vendor": connection.vendor, "error": DATABASE_DOWN}
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
