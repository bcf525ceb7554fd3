"""Rules on the whole record: a cross-field expression, and uniqueness of several fields
together. Both name fields by key in their params, so renaming or deleting a field asks them
first."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from zstorage.errors import SchemaChangeRefused
from zstorage.expressions import ExpressionError, fields_of, holds, parse_expression
from zstorage.models import Field, Rule, RuleKind
from zstorage.rules.base import InvalidParams, RuleType, register


@register
class ExpressionRule(RuleType):
    kind = RuleKind.EXPRESSION
    on_field = False
    inputs = ("expression", "error_field")
    order = 200

    def check_params(
        self, field: Field | None, params: dict[str, Any], keys: set[str]
    ) -> dict[str, Any]:
        try:
            parse_expression(str(params.get("expression", "")), keys)
        except ExpressionError as exc:
            raise InvalidParams(str(exc)) from None
        if params.get("field") and params["field"] not in keys:
            raise InvalidParams(f"Unknown field {params['field']!r} to show the error on.")
        return params

    def prepare(self, rule: Rule, keys: set[str]) -> Any:
        return parse_expression(rule.params["expression"], keys)

    def table_holds(self, rule: Rule, prepared: Any, data: Mapping[str, Any]) -> bool:
        return holds(prepared, data)

    def error_key(self, rule: Rule) -> str | None:
        return rule.params.get("field") or None

    def _refuse_if_used(self, rule: Rule, key: str, keys: set[str], what: str) -> None:
        if key in fields_of(parse_expression(rule.params["expression"], keys)):
            raise SchemaChangeRefused(
                f"Rule {rule.pk} ({rule.params['expression']!r}) uses {key!r}; change it before "
                f"the field is {what}."
            )

    def field_renamed(self, rule: Rule, old: str, new: str, keys: set[str]) -> dict[str, Any]:
        self._refuse_if_used(rule, old, keys, "renamed")
        return rule.params

    def field_deleted(self, rule: Rule, key: str, keys: set[str]) -> None:
        self._refuse_if_used(rule, key, keys, "deleted")

    def params_from(
        self, data: Mapping[str, Any], typed: Callable[[list[str]], list[Any]]
    ) -> dict[str, Any]:
        params = {"expression": data.get("expression", "")}
        if data.get("error_field"):
            params["field"] = data["error_field"]
        return params


@register
class UniqueTogetherRule(RuleType):
    kind = RuleKind.UNIQUE_TOGETHER
    on_field = False
    inputs = ("together",)
    order = 150

    def check_params(
        self, field: Field | None, params: dict[str, Any], keys: set[str]
    ) -> dict[str, Any]:
        fields = params.get("fields")
        if not isinstance(fields, list) or len(fields) < 2 or not set(fields) <= keys:
            raise InvalidParams("List two or more of the table's field keys in params.fields.")
        return params

    def unique_keys(self, rule: Rule) -> list[str]:
        return list(rule.params["fields"])

    def field_renamed(self, rule: Rule, old: str, new: str, keys: set[str]) -> dict[str, Any]:
        return {**rule.params, "fields": [new if k == old else k for k in rule.params["fields"]]}

    def field_deleted(self, rule: Rule, key: str, keys: set[str]) -> None:
        if key in rule.params["fields"]:
            raise SchemaChangeRefused(f"A unique-together rule uses {key!r}; delete it first.")

    def params_from(
        self, data: Mapping[str, Any], typed: Callable[[list[str]], list[Any]]
    ) -> dict[str, Any]:
        return {"fields": list(data.get("together") or [])}
