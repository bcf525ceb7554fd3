"""One exception handler for the whole API: every error is JSON with a stable ``code``, a
human ``detail`` and, for validation errors, ``fields`` (field key → messages).

Domain exceptions (``zstorage.errors``, ``queues.errors``) carry ``code`` and ``status``; DRF's
own exceptions keep their codes (``not_authenticated``, ``permission_denied``, ``throttled``…).
An exception with a ``public_detail`` (an engine's error: its host, the driver's words) says
that instead to anyone but an admin; its own message goes to the log.
"""

from __future__ import annotations

import logging
from typing import Any

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.roles import is_admin

logger = logging.getLogger(__name__)


def _detail(exc: Exception, code: str, context: dict[str, Any]) -> str:
    detail: str = getattr(exc, "message", str(exc))
    public = getattr(exc, "public_detail", None)
    if not isinstance(public, str):
        return detail
    request = context.get("request")
    logger.warning(
        "%s %s answered %s: %s",
        getattr(request, "method", "?"),
        getattr(request, "path", "?"),
        code,
        detail,
    )
    return detail if is_admin(getattr(request, "user", None)) else public


def _domain_error(exc: Exception, context: dict[str, Any]) -> Response | None:
    code = getattr(exc, "code", None)
    if not isinstance(code, str) or isinstance(exc, exceptions.APIException):
        return None
    body: dict[str, Any] = {"code": code, "detail": _detail(exc, code, context)}
    errors = getattr(exc, "errors", None)
    if errors is not None:
        body["fields"] = {str(key): value for key, value in errors.items()}
    path = getattr(exc, "path", None)
    if path is not None:
        body["path"] = path
    return Response(body, status=getattr(exc, "status", status.HTTP_400_BAD_REQUEST))


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    domain = _domain_error(exc, context)
    if domain is not None:
        return domain
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        fields = detail if isinstance(detail, dict) else {"__all__": detail}
        response.data = {"code": "invalid", "detail": "The request is invalid.", "fields": fields}
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        response.data = {
            "code": codes if isinstance(codes, str) else "error",
            "detail": str(exc.detail),
        }
        if isinstance(exc, exceptions.ParseError):
            response.data["path"] = "$"  # the body as a whole is not JSON the API reads
        if isinstance(exc, exceptions.UnsupportedMediaType):
            request = context.get("request")
            sent = getattr(request, "content_type", "") or "none"
            response.data["detail"] = (
                "The API reads JSON only: send the body with 'Content-Type: application/json' "
                f"(this request's was {sent.split(';')[0]!r})."
            )
    return response
