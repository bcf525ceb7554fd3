"""The bare DRF endpoints our API is compared with: ``echo`` parses the JSON body and echoes
it (the publish API's peer); ``insert/<table id>`` writes the body as one record with
``Record.objects.create`` and answers its id (the record create API's peer).

No authentication, permission or throttle classes: what is left is the cost of gunicorn,
Django's middleware and DRF's request/response cycle — the floor under any DRF endpoint —
and, for ``insert``, one INSERT in autocommit.
"""

from __future__ import annotations

from typing import Any

from django.urls import path
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class EchoView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []

    def post(self, request: Request) -> Response:
        return Response(request.data, status=status.HTTP_201_CREATED)

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class InsertView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []

    def post(self, request: Request, table_id: int) -> Response:
        from zstorage.models import Record

        record = Record.objects.create(table_id=table_id, data=request.data)
        return Response({"id": record.pk, "data": record.data}, status=status.HTTP_201_CREATED)


urlpatterns = [
    path("echo", EchoView.as_view(), name="echo"),
    path("insert/<int:table_id>", InsertView.as_view(), name="insert"),
]
