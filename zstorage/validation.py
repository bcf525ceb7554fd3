"""Validation of a record's data against its table: field types, field rules, table rules.

Every error is collected, keyed by field key (``"__all__"`` for table rules that name no
field), so a form or an API client can show them all at once. Uniqueness is checked here for
a friendly message and enforced by a unique index (``indexes.py``) against races.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from zstorage.expressions import holds, parse_expression
from zstorage.field_types import InvalidValue, kind_of
from zstorage.models import Field, Rule, RuleKind, Table

ALL = "__all__"
REQUIRED_MESSAGE = "This field is required."


@dataclass
class TableSchema:
    """A table's fields and rules, loaded once per write."""

    table: Table
    fields: dict[str, Field]
    field_rules: dict[str, list[Rule]]
    table_rules: list[Rule]
    expressions: dict[int, ast.Expression] = field(default_factory=dict)

    @classmethod
    def load(cls, table: Table) -> TableSchema:
        fields = {f.key: f for f in table.fields.all()}
        field_rules: dict[str, list[Rule]] = {key: [] for key in fields}
        table_rules: list[Rule] = []
        for rule in table.rules.select_related("field"):
            if rule.field is not None:
                field_rules[rule.field.key].append(rule)
            else:
                table_rules.append(rule)
        schema = cls(table, fields, field_rules, table_rules)
        for rule in table_rules:
            if rule.kind == RuleKind.EXPRESSION:
                schema.expressions[rule.pk] = parse_expression(
                    rule.params["expression"], set(fields)
                )
        return schema

    def unique_rules(self) -> list[tuple[Rule, list[str]]]:
        """Every uniqueness rule with the field keys it covers."""
        found = [
            (rule, [key])
            for key, rules in self.field_rules.items()
            for rule in rules
            if rule.kind == RuleKind.UNIQUE
        ]
        found += [
            (rule, list(rule.params["fields"]))
            for rule in self.table_rules
            if rule.kind == RuleKind.UNIQUE_TOGETHER
        ]
        return found


def is_blank(value: Any) -> bool:
    return value is None or value == "" or value == []


def clean_data(
    schema: TableSchema, data: dict[str, Any], *, creating: bool
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Return the canonical data and the errors found (empty when valid).

    ``data`` is the record's full new data (for an update, the old data merged with the
    change); blank values are dropped, so absent and empty mean the same.
    """
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    for key in data:
        if key not in schema.fields:
            errors.setdefault(key, []).append(f"Unknown field {key!r}.")
    for key, fld in schema.fields.items():
        value = data.get(key)
        if is_blank(value) and creating and fld.default is not None:
            value = fld.default
        rules = schema.field_rules[key]
        if not is_blank(value):
            try:
                value = kind_of(fld.type).coerce(value, fld.options)
            except InvalidValue as exc:
                errors.setdefault(key, []).append(str(exc))
                continue
        # Blank before or after coercion: "," chooses nothing from a multiple choice.
        if is_blank(value):
            required = [r for r in rules if r.kind == RuleKind.REQUIRED]
            if fld.required or required:
                errors.setdefault(key, []).append(
                    required[0].message if required else REQUIRED_MESSAGE
                )
            continue
        clean[key] = value
        for rule in rules:
            if not _field_rule_holds(rule, value):
                errors.setdefault(key, []).append(rule.message)
    for rule in schema.table_rules:
        if rule.kind == RuleKind.EXPRESSION and not holds(schema.expressions[rule.pk], clean):
            errors.setdefault(rule.params.get("field") or ALL, []).append(rule.message)
    return clean, errors


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _comparable(value: Any, limit: Any) -> tuple[Any, Any]:
    """Numbers compare as decimals; dates and datetimes as canonical text (which orders)."""
    left, right = _number(value), _number(limit)
    if left is None or right is None:
        return str(value), str(limit)
    return left, right


def _field_rule_holds(rule: Rule, value: Any) -> bool:
    limit = rule.params.get("value")
    match rule.kind:
        case RuleKind.MIN:
            left, right = _comparable(value, limit)
            return bool(left >= right)
        case RuleKind.MAX:
            left, right = _comparable(value, limit)
            return bool(left <= right)
        case RuleKind.MIN_LENGTH:
            return len(value) >= int(limit)
        case RuleKind.MAX_LENGTH:
            return len(value) <= int(limit)
        case RuleKind.REGEX:
            return re.search(rule.params["pattern"], str(value)) is not None
        case RuleKind.CHOICES:
            allowed = rule.params["values"]
            return all(v in allowed for v in value) if isinstance(value, list) else value in allowed
    return True
