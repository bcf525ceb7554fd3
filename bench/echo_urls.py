"""The bare DRF endpoint the publish API is compared with: parse the JSON body, echo it.

No authentication, permission or throttle classes: what is left is the cost of gunicorn,
Django's middleware and DRF's request/response cycle — the floor under any DRF endpoint.
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


urlpatterns = [path("echo", EchoView.as_view(), name="echo")]
