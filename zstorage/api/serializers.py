"""Shapes of ZStorage's API. Input is checked for shape here; meaning (types, rules,
conversions) is checked by the services, so the API and the CRUD pages agree."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from zstorage.errors import QueryError
from zstorage.fields import type_choices
from zstorage.models import Field, Record, RecordChange, Rule, RuleKind, Table


class TableSerializer(serializers.ModelSerializer[Table]):
    class Meta:
        model = Table
        fields = ["id", "name", "slug", "description", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]


class FieldSerializer(serializers.ModelSerializer[Field]):
    type = serializers.ChoiceField(choices=type_choices())

    class Meta:
        model = Field
        fields = [
            "id",
            "name",
            "key",
            "type",
            "required",
            "default",
            "help_text",
            "order",
            "options",
        ]
        read_only_fields = ["id"]


class RuleSerializer(serializers.ModelSerializer[Rule]):
    kind = serializers.ChoiceField(choices=RuleKind.choices)
    field = serializers.SlugRelatedField(
        slug_field="key", queryset=Field.objects.all(), required=False, allow_null=True
    )

    class Meta:
        model = Rule
        fields = ["id", "kind", "field", "params", "message", "created_at"]
        read_only_fields = ["id", "created_at"]

    def __init__(self, *args: Any, table: Table | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if table is not None:
            self.fields["field"].queryset = table.fields.all()  # type: ignore[attr-defined]


class RecordSerializer(serializers.ModelSerializer[Record]):
    table: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    created_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    updated_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = Record
        fields = [
            "id",
            "table",
            "version",
            "data",
            "created_at",
            "updated_at",
            "created_by",
            "updated_by",
        ]
        read_only_fields = fields


class RecordChangeSerializer(serializers.ModelSerializer[RecordChange]):
    actor: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = RecordChange
        fields = ["kind", "version", "changes", "actor", "at"]
        read_only_fields = fields


#: Ids and versions are 64-bit in every database: a larger number names nothing.
MAX_INT64 = 2**63 - 1


class RecordWriteSerializer(serializers.Serializer[Any]):
    """``{"data": {...}, "version": n}``; a bare object is taken as the data itself."""

    data = serializers.DictField()  # type: ignore[assignment]  # a field named like .data
    version = serializers.IntegerField(required=False, min_value=1, max_value=MAX_INT64)


class BulkUpdateItemSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(min_value=1, max_value=MAX_INT64)
    data = serializers.DictField()  # type: ignore[assignment]  # a field named like .data
    version = serializers.IntegerField(required=False, min_value=1, max_value=MAX_INT64)


class QueryField(serializers.JSONField):
    """A query-language filter: its errors are the query language's (``invalid_query`` with
    the ``path``), null included, not a serializer's field error."""

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        if data is None:
            raise QueryError("a query must be a JSON object, not null.", path="$")
        return super().validate_empty_values(data)


class QuerySerializer(serializers.Serializer[Any]):
    query = QueryField(required=False, default=dict)
    search = serializers.CharField(required=False, allow_blank=True, default="")
    sort = serializers.CharField(required=False, allow_blank=True, default="")
    cursor = serializers.CharField(required=False, allow_blank=True, default="")
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=500, default=50)


class AggregateSerializer(serializers.Serializer[Any]):
    function = serializers.ChoiceField(choices=["count", "sum", "avg", "min", "max"])
    field = serializers.CharField(required=False, allow_null=True, default=None)
    group_by = serializers.CharField(required=False, allow_null=True, default=None)
    query = QueryField(required=False, default=dict)
    search = serializers.CharField(required=False, allow_blank=True, default="")
