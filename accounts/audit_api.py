"""``GET /api/v1/audit/``: the audit trail for admins, filtered and paged like the other list
APIs (``offset``/``limit``; ``count`` is the filtered total).

It lives here rather than in ``audit`` because answering needs what this app owns (the admin
role, token scopes) and ``audit`` is the lowest layer. A token needs the ``admin`` scope and an
admin user; a token limited to some queues is refused (``token_queue_limit``): the trail
names every queue.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import queue_limit
from accounts.permissions import IsPlatformAdmin, TokenScope
from accounts.scopes import Scope
from audit.export import as_dict
from audit.filters import AuditFilters
from audit.models import Via

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
#: The largest ``offset``: offset and limit stay within the databases' 64-bit integers.
MAX_OFFSET = 2**62


class AuditAdmins(IsPlatformAdmin):
    message = "Only admins read the audit trail."


EVENT_FIELDS: dict[str, serializers.Field[Any, Any, Any, Any]] = {
    "id": serializers.IntegerField(),
    "at": serializers.DateTimeField(),
    "actor": serializers.CharField(help_text="The username as it was; empty for nobody."),
    "actor_id": serializers.IntegerField(allow_null=True),
    "token_id": serializers.IntegerField(allow_null=True),
    "token_name": serializers.CharField(),
    "remote_addr": serializers.CharField(allow_null=True),
    "via": serializers.ChoiceField(choices=Via.values),
    "action": serializers.CharField(help_text='A dotted code, e.g. "queue.purge".'),
    "object_type": serializers.CharField(help_text='e.g. "queues.queue"'),
    "object_id": serializers.CharField(),
    "object_label": serializers.CharField(),
    "before": serializers.JSONField(allow_null=True),
    "after": serializers.JSONField(allow_null=True),
    "details": serializers.JSONField(),
}
PAGE = inline_serializer(
    "AuditPage",
    {
        "count": serializers.IntegerField(),
        "offset": serializers.IntegerField(),
        "limit": serializers.IntegerField(),
        "results": inline_serializer("AuditEvent", EVENT_FIELDS, many=True),
    },
)


class AuditListView(APIView):
    permission_classes = [permissions.IsAuthenticated, TokenScope, AuditAdmins]
    token_scope = Scope.ADMIN

    @extend_schema(
        operation_id="v1_audit_list",
        responses=PAGE,
        parameters=[
            OpenApiParameter("action", str, description='"queue.purge", or "queue" for all'),
            OpenApiParameter("actor", str, description="A username (any case)"),
            OpenApiParameter("object_type", str, description='e.g. "queues.queue"'),
            OpenApiParameter("object_id", str),
            OpenApiParameter("via", str, enum=Via.values),
            OpenApiParameter("from", str, description="ISO 8601 date or date-time"),
            OpenApiParameter("to", str, description="ISO 8601 date or date-time (inclusive)"),
            OpenApiParameter("offset", int),
            OpenApiParameter("limit", int, description=f"1 to {MAX_LIMIT}"),
        ],
    )
    def get(self, request: Request) -> Response:
        """Audit events, newest first."""
        if queue_limit(request.auth) is not None:
            raise PermissionDenied(
                "This token is limited to some queues: reading the audit trail needs a token "
                "with all queues.",
                code="token_queue_limit",
            )
        filters = AuditFilters.read(request.query_params)
        if filters.errors:
            raise ValidationError(filters.errors)
        offset, limit = _page_bounds(request.query_params)
        events = filters.apply()
        page = [as_dict(event) for event in events[offset : offset + limit]]
        return Response(
            {"count": events.count(), "offset": offset, "limit": limit, "results": page}
        )


def _page_bounds(query: Mapping[str, Any]) -> tuple[int, int]:
    """``offset`` and ``limit`` from the query string, checked."""
    bounds = {}
    for key, default, low, high in (
        ("offset", 0, 0, MAX_OFFSET),
        ("limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
    ):
        raw = query.get(key)
        try:
            value = default if raw in (None, "") else int(raw)
        except (TypeError, ValueError):
            raise ValidationError({key: ["A whole number."]}) from None
        if not low <= value <= high:
            raise ValidationError({key: [f"Out of range ({low} to {high})."]})
        bounds[key] = value
    return bounds["offset"], bounds["limit"]
