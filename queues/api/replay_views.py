"""``/api/v1/replays/``: replay a table link's records from their current version (see
``queues.replay``). Admins only (token scope ``admin``); a token limited to some queues sees
and starts replays on links to its queues only. Errors: ``invalid_replay`` (400, per part in
``fields``), ``replay_too_large`` (400), ``replay_not_found`` (404), ``replay_ended`` (409).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import queue_limit
from accounts.permissions import IsPlatformAdmin, TokenScope
from accounts.scopes import Scope
from queues.models.replay import Replay, ReplayState
from queues.replay import service
from queues.replay.errors import InvalidReplay, ReplayNotFound

#: The most replays one list answer holds.
MAX_LIMIT = 500


class ReplayRequestSerializer(serializers.Serializer[Any]):
    """What starting (or previewing) a replay takes; read by ``queues.replay.service``."""

    link = serializers.IntegerField(help_text="The table link's id.")
    selection = serializers.JSONField(
        required=False,
        help_text='{"filter"?: query, "ids"?: [id, …], "changed_from"?: time, "changed_to"?: '
        "time}, all applying together; none: every record of the link.",
    )
    rate = serializers.IntegerField(help_text="Records written to the outbox per second.")


class ReplaySerializer(serializers.ModelSerializer[Replay]):
    table = serializers.CharField(source="table.slug", read_only=True)
    queue = serializers.CharField(source="queue.name", read_only=True)
    created_by = serializers.CharField(
        source="created_by.username", read_only=True, allow_null=True, default=None
    )
    percent = serializers.IntegerField(read_only=True)
    eta_seconds = serializers.SerializerMethodField()

    class Meta:
        model = Replay
        fields = [
            "id", "replay_id", "link", "table", "queue", "handler", "selection", "rate",
            "state", "reason", "total", "written", "percent", "cursor", "eta_seconds",
            "created_by", "created_at", "started_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_eta_seconds(self, replay: Replay) -> float | None:
        """Seconds left at the replay's rate (None once it ended)."""
        if replay.ended:
            return None
        return round(max(0, replay.total - replay.written) / replay.rate, 1)


class PreviewSerializer(serializers.Serializer[Any]):
    count = serializers.IntegerField()
    limit = serializers.IntegerField()
    seconds = serializers.FloatField()
    table = serializers.CharField()
    queue = serializers.CharField()


class ReplayAdmins(IsPlatformAdmin):
    message = "Only admins replay records."


class AdminView(APIView):
    permission_classes = [permissions.IsAuthenticated, TokenScope, ReplayAdmins]
    token_scope = Scope.ADMIN

    def replays(self) -> QuerySet[Replay]:
        found = Replay.objects.select_related("table", "queue", "created_by")
        limit = queue_limit(self.request.auth)
        return found if limit is None else found.filter(queue_id__in=limit)

    def replay(self, replay_id: int) -> Replay:
        found = self.replays().filter(pk=replay_id).first()
        if found is None:
            raise ReplayNotFound(f"No replay {replay_id}.")
        return found

    def link(self, body: Mapping[str, Any]) -> object:
        """The body's link, as the token may see it (a link to another queue is unknown)."""
        raw = body.get("link")
        limit = queue_limit(self.request.auth)
        if limit is None:
            return raw
        link = service.find_link(raw)
        if link.queue_id not in limit:
            raise InvalidReplay({"link": ["No table link with this id."]})
        return link


def _body(request: Request) -> Mapping[str, Any]:
    if not isinstance(request.data, Mapping):
        raise InvalidReplay({"body": ["Send a JSON object with link, selection and rate."]})
    return request.data


class ReplayPageSerializer(serializers.Serializer[Any]):
    """A page of replays, as the list answers."""

    count = serializers.IntegerField()
    offset = serializers.IntegerField()
    limit = serializers.IntegerField()
    results = ReplaySerializer(many=True)


class ReplayListView(AdminView):
    @extend_schema(
        operation_id="v1_replays_list",
        responses=ReplayPageSerializer,
        parameters=[
            OpenApiParameter("state", str, enum=ReplayState.values),
            OpenApiParameter("offset", int),
            OpenApiParameter("limit", int),
        ],
    )
    def get(self, request: Request) -> Response:
        """Replays, newest first."""
        found = self.replays()
        state = request.query_params.get("state")
        if state:
            if state not in ReplayState.values:
                raise ValidationError({"state": [f"One of {', '.join(ReplayState.values)}."]})
            found = found.filter(state=state)
        offset = _whole(request, "offset", 0, 0, 2**62)
        limit = _whole(request, "limit", 100, 1, MAX_LIMIT)
        page = found.order_by("-id")[offset : offset + limit]
        return Response(
            {
                "count": found.count(),
                "offset": offset,
                "limit": limit,
                "results": ReplaySerializer(page, many=True).data,
            }
        )

    @extend_schema(
        operation_id="v1_replays_create",
        request=ReplayRequestSerializer,
        responses={201: ReplaySerializer},
    )
    def post(self, request: Request) -> Response:
        """Start a replay: checked, counted, audited (``replay.start``); the scheduler runs it."""
        body = _body(request)
        replay = service.start(
            self.link(body),
            body.get("selection"),
            body.get("rate"),
            user=request.user,
            request=request._request,
        )
        return Response(ReplaySerializer(replay).data, status=status.HTTP_201_CREATED)


class ReplayPreviewView(AdminView):
    @extend_schema(request=ReplayRequestSerializer, responses=PreviewSerializer)
    def post(self, request: Request) -> Response:
        """How many records a replay would send (``rate`` defaults to 100 here), and how long
        it would take; starts nothing."""
        body = _body(request)
        seen = service.preview(self.link(body), body.get("selection"), body.get("rate", 100))
        return Response(
            {
                "count": seen.count,
                "limit": seen.limit,
                "seconds": round(seen.seconds, 1),
                "table": seen.link.table.slug,
                "queue": seen.link.queue.name,
            }
        )


class ReplayDetailView(AdminView):
    @extend_schema(responses=ReplaySerializer)
    def get(self, request: Request, replay_id: int) -> Response:
        """The replay with its progress."""
        return Response(ReplaySerializer(self.replay(replay_id)).data)


class ReplayCancelView(AdminView):
    @extend_schema(request=None, responses=ReplaySerializer)
    def post(self, request: Request, replay_id: int) -> Response:
        """Cancel a running replay (audited as ``replay.cancel``); 409 once it ended."""
        replay = service.cancel(self.replay(replay_id).pk, request=request._request)
        return Response(ReplaySerializer(self.replay(replay.pk)).data)


def _whole(request: Request, key: str, default: int, least: int, most: int) -> int:
    raw = request.query_params.get(key)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not least <= int(raw) <= most:
        raise ValidationError({key: [f"A whole number from {least} to {most}."]})
    return int(raw)
