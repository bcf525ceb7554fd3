"""Reference values as people read them: "#31 Ada Lovelace" with a link, instead of a bare id.

A page that shows records (a list, a record with its history, an export) asks once for the
labels of every record its reference values point at: one query per referenced table, and only
for tables the user may see — to anyone else the value stays a bare id, so a label never tells
a business user about a table they were not granted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.urls import reverse

from backoffice.forms.records import linked_table
from backoffice.values import label_conditions, record_label
from zstorage import reads
from zstorage.fields import kind_of
from zstorage.models import Field, Record, Table


@dataclass
class ReferenceLabels:
    """For each reference field shown: the table its values point at (if the user may see
    it) and the labels of the records a page needs."""

    targets: dict[str, Table] = field(default_factory=dict)
    labels: dict[str, dict[int, str]] = field(default_factory=dict)

    def label(self, key: str, value: Any) -> str:
        """``#31 Ada Lovelace``; ``#31`` when the record is gone or its table not visible."""
        found = self.labels.get(key, {}).get(value) if isinstance(value, int) else None
        return found or f"#{value}"

    def link(self, key: str, value: Any) -> str | None:
        target = self.targets.get(key)
        if target is None or not isinstance(value, int):
            return None
        return reverse("backoffice:record", args=[target.slug, value])


def label_column(key: str) -> str:
    """The CSV column an export writes a reference's label in, after its id column."""
    return f"{key} label"


def is_reference(fld: Field) -> bool:
    return kind_of(fld.type).linked_table(fld.options or {}) is not None


def reference_labels(
    user: Any, fields: Mapping[str, Field], values: Iterable[Mapping[str, Any]]
) -> ReferenceLabels:
    """The labels of what ``values`` (records' data, or a change's old and new values) point
    at through ``fields``' references, as far as ``user`` may see."""
    references = {key: fld for key, fld in fields.items() if is_reference(fld)}
    found = ReferenceLabels()
    if not references:
        return found
    wanted: dict[str, set[int]] = defaultdict(set)
    for data in values:
        for key in references:
            value = data.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                wanted[key].add(value)
    by_target: dict[int, tuple[Table, set[int]]] = {}
    for key, fld in references.items():
        target = linked_table(user, fld)
        if target is None:
            continue
        found.targets[key] = target
        by_target.setdefault(target.pk, (target, set()))[1].update(wanted.get(key, ()))
    names: dict[int, dict[int, str]] = {}
    for target_pk, (target, ids) in by_target.items():
        if not ids:
            continue
        target_fields = reads.fields_of(target)
        names[target_pk] = {
            record.pk: record_label(record, target_fields, target.display_field)
            for record in Record.objects.filter(table=target, pk__in=ids)
        }
    for key, target in found.targets.items():
        found.labels[key] = names.get(target.pk, {})
    return found


def of_records(
    user: Any, fields: Mapping[str, Field], records: Iterable[Record]
) -> ReferenceLabels:
    return reference_labels(user, fields, (record.data for record in records))


#: The most records a reference filter typed as a name may stand for (the query language's
#: cap on one ``$in`` list is larger; a name this common is better narrowed).
NAMED_LIMIT = 500


def records_named(user: Any, fld: Field, text: str) -> list[int]:
    """The ids of the records ``fld`` may point at whose label contains ``text`` (a
    reference filter typed as a name). ValueError, saying what to type instead, when the user
    may not see the referenced table or too many records match."""
    target = linked_table(user, fld)
    if target is None:
        raise ValueError("Type the record's id: its table is not one you may search.")
    target_fields = reads.fields_of(target)
    named = label_conditions(target_fields, text)
    if not named:
        raise ValueError(f"Type the record's id: {target.name} records have no name to search.")
    found = reads.records_for(target, query={"$or": named}, fields=target_fields)
    ids = list(found.order_by("id").values_list("pk", flat=True)[: NAMED_LIMIT + 1])
    if len(ids) > NAMED_LIMIT:
        raise ValueError(
            f"More than {NAMED_LIMIT} {target.name} records match {text!r}: type more of the "
            "name, or the record's id."
        )
    return ids
