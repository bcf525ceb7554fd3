"""The trace API: a message's timeline by its id, and a record's by version
(``workers.trace``). Both read with the ``read`` scope; who may see what is the trace's rule
(admins everything, others the record events of their granted tables; a token limited to some
queues, their messages only), and anything else is the same 404 as a message that does not
exist."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import queue_limit
from accounts.roles import is_admin
from accounts.scopes import Scope
from workers.trace import MAX_VERSIONS, may_see, message_timeline, record_timeline
from zstorage.api.schema_views import table_for
from zstorage.models import Record, RecordChange
from zstorage.permissions import Action


class MessageTraceView(APIView):
    token_scope = Scope.READ

    @extend_schema(
        parameters=[
            OpenApiParameter("message_id", OpenApiTypes.STR, OpenApiParameter.PATH),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, message_id: str) -> Response:
        timeline = message_timeline(message_id)
        limit = queue_limit(request.auth)
        if (
            timeline is None
            or not may_see(request.user, timeline)
            or (limit is not None and timeline.queue_id not in limit)
        ):
            raise NotFound("No message with this id.")
        return Response(timeline.as_dict(admin=is_admin(request.user)))


class RecordTraceView(APIView):
    token_scope = Scope.READ

    @extend_schema(
        parameters=[
            OpenApiParameter("slug", OpenApiTypes.STR, OpenApiParameter.PATH),
            OpenApiParameter("record_id", OpenApiTypes.INT, OpenApiParameter.PATH),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, slug: str, record_id: int) -> Response:
        table = table_for(request, slug, Action.VIEW)
        known = Record.objects.filter(table=table, pk=record_id).exists()
        if not known and not RecordChange.objects.filter(table=table, record_id=record_id).exists():
            raise NotFound(f"No record {record_id} in table {slug!r}.")
        versions = record_timeline(table, record_id)
        limit = queue_limit(request.auth)
        if limit is not None:  # a token limited to some queues sees their messages only
            for version in versions:
                version.messages = [m for m in version.messages if m.queue_id in limit]
        admin = is_admin(request.user)
        return Response(
            {
                "table": table.slug,
                "record_id": record_id,
                "versions": [v.as_dict(admin) for v in versions],
                "truncated": len(versions) >= MAX_VERSIONS,
            }
        )
