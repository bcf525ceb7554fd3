"""Schema changes at run time: tables, fields and validation rules.

A change that touches stored data either converts every value or is refused with the
records that stand in the way: nothing is silently lost. Data rewrites (a renamed key, a
converted type, a back-filled default) are schema migrations: they do not publish record
events and do not bump record versions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from audit import trail
from zstorage import indexes
from zstorage.errors import SchemaChangeRefused, ZStorageError
from zstorage.fields import InvalidValue, has_nul, kind_of, registered_types
from zstorage.fields.base import NUL_MESSAGE
from zstorage.fields.structured import fields_referencing
from zstorage.models import Field, Record, Rule, Table
from zstorage.rules import InvalidParams, rule_type

#: How many offending records a refusal names.
EXAMPLES = 5
#: Django's words for a value outside a field's choices, which the type once was.
_NOT_A_TYPE = "Value %r is not a valid choice."


class SchemaInvalid(ZStorageError):
    """A table, field or rule definition is invalid; ``errors`` is keyed by attribute."""

    code = "invalid_schema"

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("The definition is invalid.")
        self.errors = errors


def _full_clean(obj: Table | Field | Rule, exclude: list[str] | None = None) -> None:
    try:
        obj.full_clean(exclude=exclude)
    except ValidationError as exc:
        raise SchemaInvalid(exc.message_dict) from None


# Tables ---------------------------------------------------------------------------------


def create_table(
    name: str, slug: str, description: str = "", display_field: str | None = None
) -> Table:
    """A new table. It has no fields yet, so a ``display_field`` is refused: set it once the
    field exists (``update_table``)."""
    table = Table(name=name, slug=slug, description=description)
    if display_field is not None:
        table.display_field = display_field
        _check_display_field(table)
    _full_clean(table)
    with transaction.atomic():
        table.save()
        trail.record("table.create", table, after=trail.snapshot(table, TABLE_FIELDS))
    return table


#: What the audit trail keeps of a table, a field and a rule.
TABLE_FIELDS = ("name", "slug", "description", "display_field")
FIELD_FIELDS = (
    "table",
    "key",
    "name",
    "type",
    "required",
    "default",
    "help_text",
    "order",
    "options",
)
RULE_FIELDS = ("table", "field", "kind", "params", "message")


def update_table(table: Table, **changes: Any) -> Table:
    renamed = "slug" in changes and changes["slug"] != table.slug
    if renamed and fields_referencing(table.slug).exists():
        raise SchemaChangeRefused(
            "Reference fields point at this table by its slug; it cannot be renamed."
        )
    before = trail.snapshot(table, TABLE_FIELDS)
    for attr in ("name", "slug", "description", "display_field"):
        if attr in changes:
            setattr(table, attr, changes[attr])
    if table.display_field is not None:
        _check_display_field(table)
    _full_clean(table)
    with transaction.atomic():
        table.save()
        after = trail.snapshot(table, TABLE_FIELDS)
        trail.record("table.change", table, before=before, after=after)
    return table


def _check_display_field(table: Table) -> None:
    """A display field is one of the table's fields whose values can name a record (text-like:
    text, email, phone, choice…)."""
    key = table.display_field or ""
    fields = list(table.fields.order_by("order", "id")) if table.pk else []
    found = next((f for f in fields if f.key == key), None)
    if found is None or not kind_of(found.type).labels_records:
        namable = [f.key for f in fields if kind_of(f.type).labels_records]
        raise SchemaInvalid(
            {
                "display_field": [
                    f"{key!r} is not a field of {table.slug!r} whose values can name a record"
                    + (f"; choose one of {', '.join(namable)}." if namable else ".")
                ]
            }
        )


def delete_table(table: Table, *, confirm: bool = False) -> None:
    """Refused while the table has records, unless ``confirm`` says to delete them too."""
    count = table.records.count()
    if count and not confirm:
        raise SchemaChangeRefused(
            f"Table {table.slug!r} has {count} records; confirm to delete them with it."
        )
    if fields_referencing(table.slug).exclude(table=table).exists():
        raise SchemaChangeRefused("Other tables reference this table; delete those fields first.")
    with transaction.atomic():
        trail.record(
            "table.delete",
            table,
            before=trail.snapshot(table, TABLE_FIELDS),
            details={"records_deleted": count},
        )
        for rule in table.rules.all():
            indexes.drop_unique_index(rule)
        table.records.all().delete()
        table.delete()


# Fields ---------------------------------------------------------------------------------


def _check_field(field: Field) -> None:
    unknown = {} if field.type in registered_types() else {"type": [_NOT_A_TYPE % field.type]}
    try:
        field.full_clean(exclude=["table"])
    except ValidationError as exc:
        raise SchemaInvalid({**exc.message_dict, **unknown}) from None
    if unknown:
        raise SchemaInvalid(unknown)
    if not isinstance(field.options, dict):
        raise SchemaInvalid({"options": ["Give the options as a JSON object, e.g. {}."]})
    if has_nul(field.options):
        raise SchemaInvalid({"options": [NUL_MESSAGE]})
    try:
        kind = kind_of(field.type)
        kind.check_options(field.options)
        kind.check_schema(field.options)
    except InvalidValue as exc:
        raise SchemaInvalid({"options": [str(exc)]}) from None
    if field.default is not None:
        try:
            field.default = kind.coerce(field.default, field.options)
        except InvalidValue as exc:
            raise SchemaInvalid({"default": [str(exc)]}) from None
        if has_nul(field.default):
            raise SchemaInvalid({"default": [NUL_MESSAGE]})


def _rewrite(table: Table, change: Callable[[dict[str, Any]], dict[str, Any] | None]) -> int:
    """Apply ``change`` to every record's data (None means unchanged); return how many."""
    changed = []
    for record in table.records.all().iterator(chunk_size=500):
        new = change(dict(record.data))
        if new is not None:
            record.data = new
            changed.append(record)
    Record.objects.bulk_update(changed, ["data"], batch_size=500)
    return len(changed)


def add_field(table: Table, **attrs: Any) -> Field:
    """Add a field. A required field on a table with records needs a default to back-fill."""
    attrs.setdefault("order", (table.fields.count() + 1) * 10)
    field = Field(table=table, **attrs)
    _check_field(field)
    if table.fields.filter(key=field.key).exists():
        raise SchemaInvalid({"key": [f"Table {table.slug!r} already has a field {field.key!r}."]})
    with transaction.atomic():
        if field.required and table.records.exists():
            if field.default is None:
                raise SchemaChangeRefused(
                    f"Table {table.slug!r} has records without {field.key!r}; give a default to "
                    "fill them, or add the field as optional."
                )
            _rewrite(
                table,
                lambda data: data if field.key in data else {**data, field.key: field.default},
            )
        field.save()
        trail.record("field.create", field, after=trail.snapshot(field, FIELD_FIELDS))
    return field


def update_field(field: Field, **changes: Any) -> Field:
    """Rename, retype or reconfigure a field, converting stored values or refusing."""
    old_key, old_type, old_options = field.key, field.type, dict(field.options)
    before = trail.snapshot(field, FIELD_FIELDS)
    for attr, value in changes.items():
        setattr(field, attr, value)
    _check_field(field)
    table = field.table
    for rule in field.rules.all():
        rule_type(rule.kind).field_retyped(rule, field)
    reindex = field.key != old_key or field.type != old_type
    with transaction.atomic():
        if reindex:
            # Dropped before the data is rewritten, so that values a conversion makes equal
            # are refused by the rebuild below rather than by a bare IntegrityError.
            _drop_unique_indexes(table)
        if field.key != old_key:
            if table.fields.filter(key=field.key).exclude(pk=field.pk).exists():
                raise SchemaInvalid({"key": [f"Table {table.slug!r} already has {field.key!r}."]})
            keys = {f.key for f in table.fields.all()}
            for rule in _table_rules(table):
                params = rule_type(rule.kind).field_renamed(rule, old_key, field.key, keys)
                if params != rule.params:
                    rule.params = params
                    rule.save(update_fields=["params"])
            _rewrite(
                table,
                lambda data: (
                    {(field.key if k == old_key else k): v for k, v in data.items()}
                    if old_key in data
                    else None
                ),
            )
        if field.type != old_type or field.options != old_options:
            _convert(field)
        field.save()
        if table.display_field == old_key:
            named = kind_of(field.type).labels_records
            Table.objects.filter(pk=table.pk).update(display_field=field.key if named else None)
        if reindex:
            _create_unique_indexes(table)
        after = trail.snapshot(field, FIELD_FIELDS)
        trail.record("field.change", field, before=before, after=after)
    return field


def _convert(field: Field) -> None:
    kind = kind_of(field.type)
    failures: list[str] = []
    changed = []
    converted_values: dict[int, Any] = {}  # record id -> its converted value
    for record in field.table.records.all().iterator(chunk_size=500):
        value = record.data.get(field.key)
        if value is None:
            continue
        try:
            converted = kind.convert(value, field.options)
        except InvalidValue as exc:
            failures.append(f"record {record.pk}: {value!r} ({exc})")
            continue
        converted_values[record.pk] = converted
        if converted != value:
            record.data = {**record.data, field.key: converted}
            changed.append(record)
    # Values the database refuses (a reference to no record).
    refused = kind.missing(field.options, list(converted_values.values()))
    if refused:
        failures += [
            f"record {pk}: {value!r} ({refused[value]})"
            for pk, value in converted_values.items()
            if value in refused
        ]
    if failures:
        raise SchemaChangeRefused(
            f"{len(failures)} values of {field.key!r} cannot become {field.type}: "
            + "; ".join(failures[:EXAMPLES])
            + (" …" if len(failures) > EXAMPLES else "")
        )
    Record.objects.bulk_update(changed, ["data"], batch_size=500)


def delete_field(field: Field, *, confirm: bool = False) -> int:
    """Delete a field. Refused while records hold values for it unless ``confirm``; returns
    how many records lost their value."""
    table = field.table
    holding = sum(
        1 for r in table.records.all().only("data").iterator() if r.data.get(field.key) is not None
    )
    if holding and not confirm:
        raise SchemaChangeRefused(
            f"{holding} records hold a value for {field.key!r}; confirm to delete those values."
        )
    keys = {f.key for f in table.fields.all()}
    for rule in _table_rules(table):
        rule_type(rule.kind).field_deleted(rule, field.key, keys)
    with transaction.atomic():
        trail.record(
            "field.delete",
            field,
            before=trail.snapshot(field, FIELD_FIELDS),
            details={"values_deleted": holding},
        )
        for rule in field.rules.all():
            indexes.drop_unique_index(rule)
        _rewrite(
            table,
            lambda data: (
                {k: v for k, v in data.items() if k != field.key} if field.key in data else None
            ),
        )
        field.delete()
        Table.objects.filter(pk=table.pk, display_field=field.key).update(display_field=None)
    return holding


def _table_rules(table: Table) -> list[Rule]:
    """The rules that name fields in their params, in the order their kinds are asked."""
    rules = table.rules.filter(field__isnull=True)
    return sorted(rules, key=lambda rule: (rule_type(rule.kind).order, rule.pk))


# Rules ----------------------------------------------------------------------------------


def _rule_params(
    table: Table, kind: str, field: Field | None, params: dict[str, Any]
) -> dict[str, Any]:
    try:
        behaviour = rule_type(kind)
    except KeyError:
        return params  # not a kind: the model's check names it
    if behaviour.on_field and field is None:
        raise SchemaInvalid({"field": [f"A {kind} rule applies to a field: name it."]})
    if not behaviour.on_field and field is not None:
        raise SchemaInvalid({"field": [f"A {kind} rule applies to the table, not to a field."]})
    try:
        return behaviour.check_params(field, params, {f.key for f in table.fields.all()})
    except InvalidParams as exc:
        raise SchemaInvalid({exc.key: [str(exc)]}) from None


def add_rule(
    table: Table,
    kind: str,
    message: str,
    *,
    field: Field | None = None,
    params: dict[str, Any] | None = None,
) -> Rule:
    """Add a rule. A uniqueness rule gets its unique index, refused if records collide."""
    rule = Rule(table=table, field=field, kind=kind, message=message)
    if not isinstance(params or {}, dict):
        raise SchemaInvalid({"params": ["Give the parameters as a JSON object."]})
    if has_nul(params):
        raise SchemaInvalid({"params": [NUL_MESSAGE]})
    rule.params = _rule_params(table, kind, field, dict(params or {}))
    _full_clean(rule, exclude=["table", "field"])
    with transaction.atomic():
        rule.save()
        keys = _unique_keys(rule)
        if keys:
            _create_unique_index(rule, keys)
        trail.record("rule.create", rule, after=trail.snapshot(rule, RULE_FIELDS))
    return rule


def _create_unique_index(rule: Rule, keys: list[str]) -> None:
    """Create the rule's index, or refuse when stored values already collide."""
    try:
        with transaction.atomic():
            indexes.create_unique_index(rule, keys)
    except IntegrityError:
        raise SchemaChangeRefused(
            f"Existing records share values of {', '.join(keys)}; make them unique first."
        ) from None


def _unique_keys(rule: Rule) -> list[str]:
    return rule_type(rule.kind).unique_keys(rule)


def delete_rule(rule: Rule) -> None:
    with transaction.atomic():
        trail.record("rule.delete", rule, before=trail.snapshot(rule, RULE_FIELDS))
        indexes.drop_unique_index(rule)
        rule.delete()


def _drop_unique_indexes(table: Table) -> None:
    for rule in table.rules.select_related("field"):
        if _unique_keys(rule):
            indexes.drop_unique_index(rule)


def _create_unique_indexes(table: Table) -> None:
    for rule in table.rules.select_related("field"):
        keys = _unique_keys(rule)
        if keys:
            _create_unique_index(rule, keys)
