"""One exception handler for the whole API: every error is JSON with a stable ``code``, a
human ``detail`` and, for validation errors, ``fields`` (field key → messages).

Domain exceptions (``zstorage.errors``, ``queues.errors``) carry ``code`` and ``status``; DRF's
own exceptions keep their codes (``not_authenticated``, ``permission_denied``, ``throttled``…).
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def _domain_error(exc: Exception) -> Response | None:
    code = getattr(exc, "code", None)
    if not isinstance(code, str) or isinstance(exc, exceptions.APIException):
        return None
    body: dict[str, Any] = {"code": code, "detail": getattr(exc, "message", str(exc))}
    errors = getattr(exc, "errors", None)
    if errors is not None:
        body["fields"] = {str(key): value for key, value in errors.items()}
    path = getattr(exc, "path", None)
    if path is not None:
        body["path"] = path
    return Response(body, status=getattr(exc, "status", status.HTTP_400_BAD_REQUEST))


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    domain = _domain_error(exc)
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
    return response
