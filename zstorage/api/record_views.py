"""Records: CRUD, query, bulk writes, aggregation, children and history.

Every write goes through ``zstorage.records`` (validation, audit, the outbox event).
Optimistic concurrency: send the version you read (``"version"`` in the body, or
``If-Match: <version>``); a stale one answers 409 with the current version.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import OperationalError, connection, transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.scopes import Scope
from audit import trail
from zstorage import reads, records
from zstorage.api.schema_views import table_for
from zstorage.api.serializers import (
    AggregateAnswerSerializer,
    AggregateSerializer,
    BulkCreateSerializer,
    BulkUpdateItemSerializer,
    BulkUpdateSerializer,
    ChildrenAnswerSerializer,
    HistoryAnswerSerializer,
    QuerySerializer,
    RecordChangeSerializer,
    RecordPageSerializer,
    RecordSerializer,
    RecordWriteSerializer,
)
from zstorage.errors import QueryError, ZStorageError
from zstorage.models import Record, Table
from zstorage.permissions import Action, can

LIST_PARAMETERS = [
    OpenApiParameter("query", str, description="A query-language filter, as JSON."),
    OpenApiParameter("search", str, description="Full-text search over text fields."),
    OpenApiParameter("sort", str, description="Field keys, comma-separated; '-' for descending."),
    OpenApiParameter("cursor", str, description="The next_cursor of the previous page."),
    OpenApiParameter("page_size", int, description="1 to 500, default 50."),
]


def _json_param(raw: str | None) -> Any:
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise QueryError(f"The query is not valid JSON: {exc}.", path="$") from None
    except RecursionError:
        raise QueryError("The query nests too deeply.", path="$") from None


class QueryTimeout(ZStorageError):
    code = "query_timeout"
    status = 503


#: PostgreSQL's SQLSTATE for a statement cancelled by statement_timeout.
_QUERY_CANCELED = "57014"


@contextmanager
def _time_limit() -> Iterator[None]:
    """On PostgreSQL, reads run in a transaction whose statements stop after
    ``QUAYMASTER_API_STATEMENT_TIMEOUT_MS``: a costly query is a 503, not a held worker."""
    limit = int(getattr(settings, "QUAYMASTER_API_STATEMENT_TIMEOUT_MS", 0))
    if connection.vendor != "postgresql" or limit <= 0:
        yield
        return
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('statement_timeout', %s, true)", [str(limit)])
            yield
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != _QUERY_CANCELED:
            raise
        raise QueryTimeout(
            f"The query took longer than {limit} ms and was stopped: narrow it and retry."
        ) from None


def _page(table: Table, options: dict[str, Any]) -> dict[str, Any]:
    with _time_limit():
        return _read_page(table, options)


def _read_page(table: Table, options: dict[str, Any]) -> dict[str, Any]:
    fields = reads.fields_of(table)
    found = reads.records_for(
        table, query=options.get("query"), search=options.get("search", ""), fields=fields
    )
    page = reads.cursor_page(
        found.select_related("table", "created_by", "updated_by"),
        reads.parse_sort(options.get("sort"), fields),
        fields,
        cursor=options.get("cursor") or None,
        size=reads.page_size(options.get("page_size")),
    )
    return {
        "results": RecordSerializer(page.records, many=True).data,
        "next_cursor": page.next_cursor,
        "total": page.total,
    }


def _write_body(request: Request) -> tuple[dict[str, Any], int | None]:
    body = request.data
    if isinstance(body, dict) and "data" in body:
        checked = RecordWriteSerializer(data=body)
        checked.is_valid(raise_exception=True)
        version = checked.validated_data.get("version")
        data = checked.validated_data["data"]
    elif isinstance(body, dict):
        data, version = dict(body), None
    else:
        raise QueryError("Send the record's data as a JSON object.", path="$")
    if version is None:
        version = _version(request.headers.get("If-Match", "").strip('"'))
    return data, version


def _version(raw: str) -> int | None:
    """A version from ``If-Match`` or ``?version=``; anything but a whole number is ignored."""
    return int(raw) if raw.isdecimal() and len(raw) <= 18 else None


class RecordListView(APIView):
    token_scope = (Scope.READ, Scope.WRITE)

    @extend_schema(
        operation_id="v1_zstorage_tables_records_list",
        parameters=LIST_PARAMETERS,
        responses=RecordPageSerializer,
    )
    def get(self, request: Request, slug: str) -> Response:
        table = table_for(request, slug, Action.VIEW)
        options = dict(request.query_params.items())
        options["query"] = _json_param(request.query_params.get("query"))
        return Response(_page(table, options))

    @extend_schema(request=RecordWriteSerializer, responses={201: RecordSerializer})
    def post(self, request: Request, slug: str) -> Response:
        table = table_for(request, slug, Action.ADD)
        data, _ = _write_body(request)
        record = records.create_record(table, data, actor=request.user)
        return Response(RecordSerializer(record).data, status=status.HTTP_201_CREATED)


class RecordQueryView(APIView):
    token_scope = Scope.READ

    @extend_schema(request=QuerySerializer, responses=RecordPageSerializer)
    def post(self, request: Request, slug: str) -> Response:
        table = table_for(request, slug, Action.VIEW)
        body = QuerySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return Response(_page(table, dict(body.validated_data)))


class RecordDetailView(APIView):
    token_scope = (Scope.READ, Scope.WRITE)

    def _record(self, table: Table, record_id: int) -> Record:
        try:
            return Record.objects.select_related("table", "created_by", "updated_by").get(
                table=table, pk=record_id
            )
        except ObjectDoesNotExist:
            raise NotFound(f"No record {record_id} in table {table.slug!r}.") from None

    @extend_schema(responses=RecordSerializer)
    def get(self, request: Request, slug: str, record_id: int) -> Response:
        table = table_for(request, slug, Action.VIEW)
        return Response(RecordSerializer(self._record(table, record_id)).data)

    def _update(self, request: Request, slug: str, record_id: int, replace: bool) -> Response:
        table = table_for(request, slug, Action.CHANGE)
        data, version = _write_body(request)
        record = records.update_record(
            table, record_id, data, actor=request.user, expected_version=version, replace=replace
        )
        return Response(RecordSerializer(self._record(table, record.pk)).data)

    @extend_schema(request=RecordWriteSerializer, responses=RecordSerializer)
    def patch(self, request: Request, slug: str, record_id: int) -> Response:
        """Merge the given values into the record (null clears a value)."""
        return self._update(request, slug, record_id, replace=False)

    @extend_schema(request=RecordWriteSerializer, responses=RecordSerializer)
    def put(self, request: Request, slug: str, record_id: int) -> Response:
        """Replace the record's data."""
        return self._update(request, slug, record_id, replace=True)

    @extend_schema(
        parameters=[OpenApiParameter("version", int, description="The version you read.")],
        responses={204: None},
    )
    def delete(self, request: Request, slug: str, record_id: int) -> Response:
        table = table_for(request, slug, Action.DELETE)
        raw = request.query_params.get("version") or request.headers.get("If-Match", "").strip('"')
        version = _version(raw)
        records.delete_record(table, record_id, actor=request.user, expected_version=version)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RecordBulkView(APIView):
    token_scope = Scope.WRITE
    """All or nothing: one invalid row writes nothing and the answer names each bad row."""

    @extend_schema(request=BulkCreateSerializer, responses={201: RecordSerializer(many=True)})
    def post(self, request: Request, slug: str) -> Response:
        table = table_for(request, slug, Action.ADD)
        rows = request.data.get("records") if isinstance(request.data, dict) else request.data
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise QueryError('Send {"records": [{...}, ...]}: a list of objects.', path="records")
        records.check_bulk_size(rows)
        with transaction.atomic():
            created = records.bulk_create(table, rows, actor=request.user)
            trail.record("record.bulk_create", table, details=_written("created", created))
        return Response(RecordSerializer(created, many=True).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=BulkUpdateSerializer, responses=RecordSerializer(many=True))
    def patch(self, request: Request, slug: str) -> Response:
        table = table_for(request, slug, Action.CHANGE)
        rows = request.data.get("records") if isinstance(request.data, dict) else request.data
        if isinstance(rows, list):
            records.check_bulk_size(rows)  # before validating each row
        body = BulkUpdateItemSerializer(data=rows, many=True)
        body.is_valid(raise_exception=True)
        with transaction.atomic():
            updated = records.bulk_update(table, body.validated_data, actor=request.user)
            trail.record("record.bulk_update", table, details=_written("updated", updated))
        return Response(RecordSerializer(updated, many=True).data)


def _written(verb: str, rows: list[Record]) -> dict[str, Any]:
    """What the audit trail keeps of a bulk write: how many, and the first ids."""
    return {verb: len(rows), "ids": [row.pk for row in rows[:100]]}


class RecordAggregateView(APIView):
    token_scope = Scope.READ

    @extend_schema(request=AggregateSerializer, responses=AggregateAnswerSerializer)
    def post(self, request: Request, slug: str) -> Response:
        table = table_for(request, slug, Action.VIEW)
        body = AggregateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        options = body.validated_data
        fields = reads.fields_of(table)
        found = reads.records_for(
            table, query=options["query"], search=options["search"], fields=fields
        )
        with _time_limit():
            rows = reads.aggregate(
                found,
                fields,
                function=options["function"],
                field=options["field"],
                group_by=options["group_by"],
            )
        return Response({"results": rows})


class RecordChildrenView(APIView):
    token_scope = (Scope.READ, Scope.WRITE)

    @extend_schema(responses=ChildrenAnswerSerializer)
    def get(self, request: Request, slug: str, record_id: int) -> Response:
        table = table_for(request, slug, Action.VIEW)
        if not Record.objects.filter(table=table, pk=record_id).exists():
            raise NotFound(f"No record {record_id} in table {slug!r}.")
        groups = []
        for field, found in reads.children(table, record_id):
            if can(request.user, field.table, Action.VIEW):
                groups.append(
                    {
                        "table": field.table.slug,
                        "field": field.key,
                        "records": RecordSerializer(
                            found.select_related("table")[:500], many=True
                        ).data,
                        "total": found.count(),
                    }
                )
        return Response({"results": groups})


class RecordHistoryView(APIView):
    token_scope = (Scope.READ, Scope.WRITE)

    @extend_schema(responses=HistoryAnswerSerializer)
    def get(self, request: Request, slug: str, record_id: int) -> Response:
        table = table_for(request, slug, Action.VIEW)
        changes = table.changes.filter(record_id=record_id).select_related("actor")
        if not changes.exists():
            raise NotFound(f"No history for record {record_id} in table {slug!r}.")
        return Response({"results": RecordChangeSerializer(changes, many=True).data})
