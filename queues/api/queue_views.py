"""``/api/v1/queues/``: queue administration for admins — CRUD, check connection,
provision, stats and a test message.

``check`` and ``provision`` take no body: whatever is sent is never read. A queue that still
has rows pointing at it is not deleted: 409 ``queue_in_use`` names them (``queues.deletion``).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.authentication import queue_limit
from accounts.permissions import IsPlatformAdmin, TokenScope
from accounts.scopes import Scope
from queues import deletion, pausing
from queues.api import publishing
from queues.api.serializers import QueueSerializer, TestMessageSerializer
from queues.backends import get_backend
from queues.models import Queue


class QueueAdmins(IsPlatformAdmin):
    message = "Only admins manage queues."


class QueueViewSet(viewsets.ModelViewSet[Queue]):
    """An admin token limited to some queues sees and manages only those (any other is a
    404, as if it did not exist) and cannot create queues."""

    serializer_class = QueueSerializer
    permission_classes = [permissions.IsAuthenticated, TokenScope, QueueAdmins]
    token_scope = Scope.ADMIN

    def get_queryset(self) -> QuerySet[Queue]:
        limit = queue_limit(self.request.auth)
        queues = Queue.objects.all()
        return queues if limit is None else queues.filter(pk__in=limit)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if queue_limit(request.auth) is not None:
            raise PermissionDenied(
                "This token is limited to some queues: creating a queue needs a token with "
                "all queues.",
                code="token_queue_limit",
            )
        return super().create(request, *args, **kwargs)

    @extend_schema(responses={204: None, 409: dict})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Delete the queue; 409 ``queue_in_use`` while messages, unpublished outbox rows,
        links, job runs, schedules or API tokens limited to it point at it."""
        return super().destroy(request, *args, **kwargs)

    def perform_destroy(self, instance: Queue) -> None:
        deletion.delete_queue(instance)

    @extend_schema(request=None, responses=dict)
    @action(detail=True, methods=["post"])
    def check(self, request: Request, pk: str | None = None) -> Response:
        """Connect to the engine with the queue's settings and credentials."""
        with get_backend(self.get_object()) as backend:
            result = backend.check()
        return Response(
            {"ok": result.ok, "detail": result.detail, "provisioned": result.provisioned}
        )

    @extend_schema(request=None, responses=dict)
    @action(detail=True, methods=["post"])
    def provision(self, request: Request, pk: str | None = None) -> Response:
        """Create the queue (and its dead-letter companions) on the engine if missing."""
        with get_backend(self.get_object()) as backend:
            backend.provision()
        return Response({"ok": True})

    @extend_schema(responses=dict)
    @action(detail=True, methods=["get"])
    def stats(self, request: Request, pk: str | None = None) -> Response:
        with get_backend(self.get_object()) as backend:
            return Response(backend.stats().as_dict())

    @extend_schema(request=None, responses=dict)
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str | None = None) -> Response:
        """Clear a pause after consecutive handler failures: workers fetch again and the
        queue's alert resolves. ``resumed`` is false when the queue was not paused."""
        queue = self.get_object()
        resumed = pausing.resume(queue, user=request.user)
        return Response({"resumed": resumed, "queue": QueueSerializer(queue).data})

    @extend_schema(request=TestMessageSerializer, responses={201: dict})
    @action(detail=True, methods=["post"], url_path="test-message")
    def test_message(self, request: Request, pk: str | None = None) -> Response:
        """Publish ``{"handler": …, "test": true, …payload}`` to the queue."""
        body = TestMessageSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data: dict[str, Any] = body.validated_data
        message = {**data["payload"], "handler": data["handler"], "test": True}
        result = publishing.publish(self.get_object(), [message])[0]
        return Response(result, status=201)
