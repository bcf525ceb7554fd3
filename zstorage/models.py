"""ZStorage's schema (tables, fields, rules) and data (records, their audit trail).

A record keeps its values as one JSON object keyed by field key; the schema rows say what
each key holds. Uniqueness rules get a real unique index on that JSON (see ``indexes.py``).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

KEY_VALIDATOR = RegexValidator(
    r"^[a-z][a-z0-9_]{0,62}$",
    "Use lowercase letters, digits and underscores, starting with a letter (at most 63).",
)


class FieldType(models.TextChoices):
    """The built-in field types' names; what each one does is its class in ``zstorage.fields``,
    whose registry may hold more types than these."""

    TEXT = "text", "Text"
    LONG_TEXT = "long_text", "Long text"
    INTEGER = "integer", "Integer"
    DECIMAL = "decimal", "Decimal"
    BOOLEAN = "boolean", "Boolean"
    DATE = "date", "Date"
    DATETIME = "datetime", "Date and time"
    EMAIL = "email", "Email"
    URL = "url", "URL"
    CHOICE = "choice", "Choice"
    MULTI_CHOICE = "multi_choice", "Multiple choice"
    JSON = "json", "JSON"
    REFERENCE = "reference", "Reference"


class RuleKind(models.TextChoices):
    REQUIRED = "required", "Required"
    UNIQUE = "unique", "Unique"
    MIN = "min", "Minimum"
    MAX = "max", "Maximum"
    MIN_LENGTH = "min_length", "Minimum length"
    MAX_LENGTH = "max_length", "Maximum length"
    REGEX = "regex", "Pattern"
    CHOICES = "choices", "One of"
    EXPRESSION = "expression", "Cross-field expression"
    UNIQUE_TOGETHER = "unique_together", "Unique together"


class EventKind(models.TextChoices):
    CREATE = "create", "Created"
    UPDATE = "update", "Updated"
    DELETE = "delete", "Deleted"


def new_schema_token() -> str:
    return uuid.uuid4().hex


class Table(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=63, unique=True)
    description = models.TextField(blank=True)
    #: The key of the field whose value names a record ("#31 Ada Lovelace") in references,
    #: lists and exports; None: the first text-like field that has a value. Nullable without
    #: a default so that adding it altered the table in place on SQLite (no rebuild, which
    #: would drop the table's triggers).
    display_field = models.CharField(max_length=63, null=True, blank=True)  # noqa: DJ001
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    #: Changes whenever what a record write depends on changes (fields, rules, links and their
    #: queues): processes cache a table's schema under it, and a write checks it in the
    #: database (``zstorage.schema_cache``). Random, so a rolled-back table's id reused by
    #: another never meets its old cache entry.
    schema_token = models.CharField(max_length=32, default=new_schema_token, editable=False)

    class Meta:
        ordering = ["name"]
        permissions = [("manage_schema", "Can define tables, fields and rules")]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Never write ``schema_token`` back from an instance loaded before a schema change:
        once the row exists, only the database's triggers set it (``zstorage.schema_cache``)."""
        if not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [
                f.name
                for f in self._meta.concrete_fields
                if not f.primary_key and f.name != "schema_token"
            ]
        super().save(*args, **kwargs)


class Field(models.Model):
    table = models.ForeignKey(Table, on_delete=models.CASCADE, related_name="fields")
    name = models.CharField(max_length=200)
    key = models.CharField(max_length=63, validators=[KEY_VALIDATOR])
    # One of the registered field types (``zstorage.fields``), checked by ``zstorage.schema``:
    # the registry, not a choices list here, says which exist, so a new type needs no migration.
    type = models.CharField(max_length=20)
    required = models.BooleanField(default=False)
    default = models.JSONField(null=True, blank=True)
    help_text = models.CharField(max_length=500, blank=True)
    order = models.PositiveIntegerField(default=0)
    # Type-specific settings: {"choices": [...]} for choice types, {"table": "<slug>"} for
    # references, {"places": 2} for decimals.
    options = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["table", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["table", "key"], name="zstorage_field_key_per_table")
        ]

    def __str__(self) -> str:
        return f"{self.table.slug}.{self.key}"


class Rule(models.Model):
    """A validation rule. Field rules name their field; table rules (expression, unique
    together) name the fields in ``params``. ``message`` is what the user sees."""

    table = models.ForeignKey(Table, on_delete=models.CASCADE, related_name="rules")
    field = models.ForeignKey(
        Field, on_delete=models.CASCADE, related_name="rules", null=True, blank=True
    )
    kind = models.CharField(max_length=20, choices=RuleKind.choices)
    params = models.JSONField(default=dict, blank=True)
    message = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["table", "id"]

    def __str__(self) -> str:
        target = self.field.key if self.field else "table"
        return f"{self.table.slug}:{target}:{self.kind}"


class TableGrant(models.Model):
    """What a group may do with one table's records (business users see only their grants)."""

    table = models.ForeignKey(Table, on_delete=models.CASCADE, related_name="grants")
    group = models.ForeignKey("auth.Group", on_delete=models.CASCADE, related_name="table_grants")
    can_view = models.BooleanField(default=True)
    can_add = models.BooleanField(default=False)
    can_change = models.BooleanField(default=False)
    can_delete = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["table", "group"], name="zstorage_grant_per_group")
        ]

    def __str__(self) -> str:
        return f"{self.group} on {self.table}"


class Record(models.Model):
    table = models.ForeignKey(Table, on_delete=models.PROTECT, related_name="records")
    data = models.JSONField(default=dict)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["table", "id"], name="zstorage_record_table_id")]

    def __str__(self) -> str:
        return f"{self.table.slug}#{self.pk}"


class RecordChange(models.Model):
    """The audit trail: one row per write, kept after the record is deleted."""

    table = models.ForeignKey(Table, on_delete=models.CASCADE, related_name="changes")
    record_id = models.BigIntegerField(db_index=True)
    kind = models.CharField(max_length=10, choices=EventKind.choices)
    version = models.PositiveIntegerField()
    changes: models.JSONField[Any, Any] = models.JSONField(default=dict)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["record_id", "version", "id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.table_id}#{self.record_id} v{self.version}"
