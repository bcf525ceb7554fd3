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
        fields = ["id", "name", "slug", "description", "display_field", "created_at", "updated_at"]
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


# Answers (for the API document: the views build them as dictionaries).


class RecordPageSerializer(serializers.Serializer[Any]):
    results = RecordSerializer(many=True)
    next_cursor = serializers.CharField(
        allow_null=True, help_text="Pass as cursor for the next page; null on the last one."
    )
    total = serializers.IntegerField(help_text="Records matching the query, over all pages.")


class AggregateRowSerializer(serializers.Serializer[Any]):
    group = serializers.JSONField(help_text="The group's value; null without group_by.")
    value = serializers.JSONField(help_text="The aggregate: a number, or null on no records.")


class AggregateAnswerSerializer(serializers.Serializer[Any]):
    results = AggregateRowSerializer(many=True)


class ChildGroupSerializer(serializers.Serializer[Any]):
    table = serializers.CharField(help_text="The referencing table's slug.")
    field = serializers.CharField(help_text="Its reference field's key.")
    records = RecordSerializer(many=True, help_text="The first 500.")
    total = serializers.IntegerField()


class ChildrenAnswerSerializer(serializers.Serializer[Any]):
    results = ChildGroupSerializer(many=True)


class HistoryAnswerSerializer(serializers.Serializer[Any]):
    results = RecordChangeSerializer(many=True)


class BulkCreateSerializer(serializers.Serializer[Any]):
    """``{"records": [{...}, ...]}`` (a bare list is read too): each object a record's data."""

    records = serializers.ListField(child=serializers.DictField())


class BulkUpdateSerializer(serializers.Serializer[Any]):
    """``{"records": [{"id", "data", "version"?}, ...]}`` (a bare list is read too)."""

    records = BulkUpdateItemSerializer(many=True)
