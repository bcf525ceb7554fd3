"""``POST /api/v1/queues/{id}/dead-letters/{message_id}/dry-run``: a dead letter's handler run
once in a sandbox (``workers.dry_run``), for admins. Beside the queue API's actions (its
``{id}/…`` routes), here because running a handler is the workers' business.

``message_id`` is the dead letter's message id (or the engine's key for it, as the back-office
links use). A queue-limited admin token reaches only its queues (any other is a 404, as in the
queue API).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import queue_limit
from accounts.permissions import IsPlatformAdmin, TokenScope
from accounts.scopes import Scope
from queues.models import Queue
from workers.dry_run import dry_run_dead_letter


class DryRunAdmins(IsPlatformAdmin):
    message = "Only admins dry-run dead letters."


class DeadLetterDryRunView(APIView):
    permission_classes = [permissions.IsAuthenticated, TokenScope, DryRunAdmins]
    token_scope = Scope.ADMIN

    @extend_schema(request=None, responses={200: dict, 404: dict, 503: dict})
    def post(self, request: Request, queue_id: int, message_id: str) -> Response:
        """Run the dead letter's handler once in a sandbox and answer what it would have done:
        ``settlement``, ``would_publish``, ``record_writes``, ``not_sent``, ``log``, ``error``,
        ``timed_out``. Nothing is applied and the dead letter stays where it is."""
        limit = queue_limit(request.auth)
        queues = Queue.objects.all() if limit is None else Queue.objects.filter(pk__in=limit)
        queue = queues.filter(pk=queue_id).first()
        if queue is None:
            raise NotFound(f"No queue with id {queue_id}.", code="queue_not_found")
        result = dry_run_dead_letter(queue, message_id, request=request)
        body: dict[str, Any] = result.as_dict()
        return Response(body)
