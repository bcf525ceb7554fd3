"""Tables, fields and rules. Reading needs view access to the table; changing the schema is
for admins."""

from __future__ import annotations

import copy
from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import epoch
from accounts.roles import is_admin
from accounts.scopes import Scope
from zstorage import schema
from zstorage.api.serializers import FieldSerializer, RuleSerializer, TableSerializer
from zstorage.models import Field, Rule, Table
from zstorage.permissions import Action, can, visible_tables

CONFIRM = OpenApiParameter(
    "confirm", bool, description="Confirm a change that deletes data (records or values)."
)


def table_for(request: Request, slug: str, action: Action = Action.VIEW) -> Table:
    """The table, or 404 when the user may not even see it (its existence is not leaked).
    The table and the user's rights on it are kept per process under the cache epoch
    (``accounts.epoch``: a change to a table, a grant, a group or a membership renews it).
    Each request gets its own copy: a change or a delete alters the instance it works on (a
    delete sets its id to None), which must not reach other requests through the kept one."""
    table = epoch.cache.get(("table", slug), Table.objects.filter(slug=slug).first)
    if table is None or not _can(request.user, table, Action.VIEW):
        raise NotFound(f"No table {slug!r}.")
    if not _can(request.user, table, action):
        raise PermissionDenied(f"You may not {action.value} records of {slug!r}.")
    return copy.copy(table)


def _can(user: Any, table: Table, action: Action) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    return epoch.cache.get(("can", user.pk, table.pk, action), lambda: can(user, table, action))


def require_admin(request: Request) -> None:
    if not is_admin(request.user):
        raise PermissionDenied("Only admins may change the schema.")


def confirmed(request: Request) -> bool:
    return request.query_params.get("confirm", "").lower() in {"1", "true", "yes"}


class TableListView(APIView):
    token_scope = (Scope.READ, Scope.ADMIN)

    @extend_schema(responses=TableSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(TableSerializer(visible_tables(request.user), many=True).data)

    @extend_schema(request=TableSerializer, responses={201: TableSerializer})
    def post(self, request: Request) -> Response:
        require_admin(request)
        body = TableSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        table = schema.create_table(**body.validated_data)
        return Response(TableSerializer(table).data, status=status.HTTP_201_CREATED)


class TableDetailView(APIView):
    token_scope = (Scope.READ, Scope.ADMIN)

    @extend_schema(responses=TableSerializer)
    def get(self, request: Request, slug: str) -> Response:
        return Response(TableSerializer(table_for(request, slug)).data)

    @extend_schema(request=TableSerializer, responses=TableSerializer)
    def patch(self, request: Request, slug: str) -> Response:
        require_admin(request)
        table = table_for(request, slug)
        body = TableSerializer(table, data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        return Response(TableSerializer(schema.update_table(table, **body.validated_data)).data)

    @extend_schema(parameters=[CONFIRM], responses={204: None})
    def delete(self, request: Request, slug: str) -> Response:
        require_admin(request)
        schema.delete_table(table_for(request, slug), confirm=confirmed(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class FieldListView(APIView):
    token_scope = (Scope.READ, Scope.ADMIN)

    @extend_schema(responses=FieldSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        return Response(FieldSerializer(table_for(request, slug).fields.all(), many=True).data)

    @extend_schema(request=FieldSerializer, responses={201: FieldSerializer})
    def post(self, request: Request, slug: str) -> Response:
        require_admin(request)
        table = table_for(request, slug)
        body = FieldSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        field = schema.add_field(table, **body.validated_data)
        return Response(FieldSerializer(field).data, status=status.HTTP_201_CREATED)


class FieldDetailView(APIView):
    token_scope = (Scope.READ, Scope.ADMIN)

    def _field(self, request: Request, slug: str, key: str) -> Field:
        return get_object_or_404(Field, table=table_for(request, slug), key=key)

    @extend_schema(responses=FieldSerializer)
    def get(self, request: Request, slug: str, key: str) -> Response:
        return Response(FieldSerializer(self._field(request, slug, key)).data)

    @extend_schema(request=FieldSerializer, responses=FieldSerializer)
    def patch(self, request: Request, slug: str, key: str) -> Response:
        require_admin(request)
        field = self._field(request, slug, key)
        body = FieldSerializer(field, data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        return Response(FieldSerializer(schema.update_field(field, **body.validated_data)).data)

    @extend_schema(parameters=[CONFIRM], responses={204: None})
    def delete(self, request: Request, slug: str, key: str) -> Response:
        require_admin(request)
        schema.delete_field(self._field(request, slug, key), confirm=confirmed(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class RuleListView(APIView):
    token_scope = (Scope.READ, Scope.ADMIN)

    @extend_schema(responses=RuleSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        table = table_for(request, slug)
        return Response(RuleSerializer(table.rules.select_related("field"), many=True).data)

    @extend_schema(request=RuleSerializer, responses={201: RuleSerializer})
    def post(self, request: Request, slug: str) -> Response:
        require_admin(request)
        table = table_for(request, slug)
        body = RuleSerializer(data=request.data, table=table)
        body.is_valid(raise_exception=True)
        data: dict[str, Any] = body.validated_data
        rule = schema.add_rule(
            table,
            data["kind"],
            data["message"],
            field=data.get("field"),
            params=data.get("params") or {},
        )
        return Response(RuleSerializer(rule).data, status=status.HTTP_201_CREATED)


class RuleDetailView(APIView):
    token_scope = (Scope.READ, Scope.ADMIN)

    def _rule(self, request: Request, slug: str, rule_id: int) -> Rule:
        return get_object_or_404(Rule, table=table_for(request, slug), pk=rule_id)

    @extend_schema(responses=RuleSerializer)
    def get(self, request: Request, slug: str, rule_id: int) -> Response:
        return Response(RuleSerializer(self._rule(request, slug, rule_id)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, slug: str, rule_id: int) -> Response:
        require_admin(request)
        schema.delete_rule(self._rule(request, slug, rule_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
