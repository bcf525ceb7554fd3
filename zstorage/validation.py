"""Validation of a record's data against its table: field types, field rules, table rules.

Every error is collected, keyed by field key (``"__all__"`` for table rules that name no
field), so a form or an API client can show them all at once. Uniqueness is checked here for
a friendly message and enforced by a unique index (``indexes.py``) against races.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zstorage.fields import InvalidValue, has_nul, kind_of
from zstorage.fields.base import NUL_MESSAGE
from zstorage.models import Field, Rule, Table
from zstorage.rules import rule_type

ALL = "__all__"
REQUIRED_MESSAGE = "This field is required."


@dataclass
class TableSchema:
    """A table's fields and rules as of ``token`` (its ``schema_token`` when they were read);
    ``zstorage.schema_cache`` keeps one per table per process."""

    table: Table
    fields: dict[str, Field]
    field_rules: dict[str, list[Rule]]
    table_rules: list[Rule]
    #: What each table rule prepared once (a parsed expression), by rule id.
    prepared: dict[int, Any] = field(default_factory=dict)
    token: str = ""
    #: Every uniqueness rule with the field keys it covers.
    uniques: list[tuple[Rule, list[str]]] = field(default_factory=list)
    #: What other apps derive from this version of the schema (the queues app: its links).
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, table: Table, token: str = "") -> TableSchema:
        """Read the schema (read ``token`` before, so the pair is never newer than it)."""
        fields = {f.key: f for f in table.fields.all()}
        field_rules: dict[str, list[Rule]] = {key: [] for key in fields}
        table_rules: list[Rule] = []
        for rule in table.rules.select_related("field"):
            if rule.field is not None:
                field_rules[rule.field.key].append(rule)
            else:
                table_rules.append(rule)
        schema = cls(table, fields, field_rules, table_rules, token=token)
        for rule in table_rules:
            schema.prepared[rule.pk] = rule_type(rule.kind).prepare(rule, set(fields))
        rules = [rule for rules in field_rules.values() for rule in rules] + table_rules
        found = [(rule, rule_type(rule.kind).unique_keys(rule)) for rule in rules]
        schema.uniques = [(rule, keys) for rule, keys in found if keys]
        return schema

    def unique_rules(self) -> list[tuple[Rule, list[str]]]:
        """Every uniqueness rule with the field keys it covers."""
        return self.uniques

    @property
    def unique_keys(self) -> set[str]:
        """Keys some uniqueness rule covers: only a change to one of them can clash."""
        return {key for _, keys in self.uniques for key in keys}


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
            if has_nul(value):
                errors.setdefault(key, []).append(NUL_MESSAGE)
                continue
        # Blank before or after coercion: "," chooses nothing from a multiple choice.
        if is_blank(value):
            required = [r for r in rules if rule_type(r.kind).checks_blank]
            if fld.required or required:
                errors.setdefault(key, []).append(
                    required[0].message if required else REQUIRED_MESSAGE
                )
            continue
        clean[key] = value
        for rule in rules:
            if not rule_type(rule.kind).holds(value, rule.params):
                errors.setdefault(key, []).append(rule.message)
    for rule in schema.table_rules:
        behaviour = rule_type(rule.kind)
        if not behaviour.table_holds(rule, schema.prepared[rule.pk], clean):
            errors.setdefault(behaviour.error_key(rule) or ALL, []).append(rule.message)
    return clean, errors
