"""API endpoints about the caller: lets a script check its token before it does real work."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiToken
from accounts.roles import is_admin
from accounts.scopes import ANY


class MeView(APIView):
    token_scope = ANY

    @extend_schema(
        responses=inline_serializer(
            "Me",
            {
                "username": serializers.CharField(),
                "is_admin": serializers.BooleanField(),
                "groups": serializers.ListField(child=serializers.CharField()),
                "token": inline_serializer(
                    "MeToken",
                    {
                        "name": serializers.CharField(),
                        "scopes": serializers.ListField(child=serializers.CharField()),
                        "all_queues": serializers.BooleanField(),
                    },
                    allow_null=True,
                ),
            },
        )
    )
    def get(self, request: Request) -> Response:
        """Who the caller is, and, with a token, what the token may do (a browser session
        has no token: ``"token": null``)."""
        user = request.user
        token = request.auth if isinstance(request.auth, ApiToken) else None
        return Response(
            {
                "username": user.get_username(),
                "is_admin": is_admin(user),
                "groups": sorted(user.groups.values_list("name", flat=True)),
                "token": None
                if token is None
                else {
                    "name": token.name,
                    "scopes": sorted(token.scope_set),
                    "all_queues": token.all_queues,
                },
            }
        )
