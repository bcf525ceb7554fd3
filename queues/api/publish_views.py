"""``POST /api/v1/zstorage/queue/{id}/publish`` and ``…/queue/a/{name}/publish`` (and
``…/publish/batch``): external systems put JSON messages on a queue.

Answer 201 ``{"message-id", "queue-id", <broker id>}``: ``"sqs-id"`` for SQS,
``"kafka-offset": {"partition", "offset"}`` for Kafka, ``"broker-id"`` for RabbitMQ (the AMQP
message-id) and the database queue (the row id). ``Idempotency-Key`` replays the first answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.scopes import Scope
from queues.api import publishing
from queues.api.serializers import BATCH_SCHEMA, MESSAGE_SCHEMA
from queues.models import Queue

#: Bodies are JSON only in the document (what a form would carry is not a message).
MESSAGE = {"application/json": MESSAGE_SCHEMA}
BATCH = {"application/json": BATCH_SCHEMA}
IDEMPOTENCY = OpenApiParameter(
    "Idempotency-Key",
    str,
    location=OpenApiParameter.HEADER,
    description="Repeat a request safely: the first answer is returned again, nothing is "
    "published twice.",
)


def _queue(request: Request, **lookup: Any) -> Queue:
    """The queue named in the URL, if the caller may publish to it (403 before 404: see
    ``publishing.find_queue``)."""
    return publishing.find_queue(request.user, request.auth, **lookup)


def _respond(request: Request, queue: Queue, produce: Callable[[], Any]) -> Response:
    publishing.check_enabled(queue)
    key = request.headers.get("Idempotency-Key", "").strip()
    if key:
        earlier = publishing.remembered(request.user, key, queue)
        if earlier is not None:
            response = Response(earlier.response, status=earlier.status)
            response["Idempotent-Replayed"] = "true"
            return response
    try:
        body = produce()
    except Exception:
        if key:
            publishing.forget(request.user, key)
        raise
    if key:
        publishing.remember(request.user, key, status.HTTP_201_CREATED, body)
    return Response(body, status=status.HTTP_201_CREATED)


def _single(request: Request, queue: Queue) -> Response:
    def produce() -> dict[str, Any]:
        body = request.data
        publishing.check_message(body)
        assert isinstance(body, dict)
        return publishing.publish(queue, [body])[0]

    return _respond(request, queue, produce)


def _batch(request: Request, queue: Queue) -> Response:
    def produce() -> dict[str, Any]:
        messages = request.data.get("messages") if isinstance(request.data, dict) else None
        return {"results": publishing.publish_batch(queue, messages), "queue-id": queue.pk}

    return _respond(request, queue, produce)


class PublishByIdView(APIView):
    token_scope = Scope.PUBLISH

    @extend_schema(request=MESSAGE, parameters=[IDEMPOTENCY], responses={201: dict})
    def post(self, request: Request, queue_id: int) -> Response:
        return _single(request, _queue(request, queue_id=queue_id))


class PublishByNameView(APIView):
    token_scope = Scope.PUBLISH

    @extend_schema(request=MESSAGE, parameters=[IDEMPOTENCY], responses={201: dict})
    def post(self, request: Request, queue_name: str) -> Response:
        return _single(request, _queue(request, name=queue_name))


class PublishBatchByIdView(APIView):
    token_scope = Scope.PUBLISH

    @extend_schema(request=BATCH, parameters=[IDEMPOTENCY], responses={201: dict})
    def post(self, request: Request, queue_id: int) -> Response:
        return _batch(request, _queue(request, queue_id=queue_id))


class PublishBatchByNameView(APIView):
    token_scope = Scope.PUBLISH

    @extend_schema(request=BATCH, parameters=[IDEMPOTENCY], responses={201: dict})
    def post(self, request: Request, queue_name: str) -> Response:
        return _batch(request, _queue(request, name=queue_name))
