"""An audit event as data (the REST API's rows), as a CSV line (the page's export), and its
before/after as a readable list of changes (the page)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from audit.models import AuditEvent

COLUMNS = (
    "id", "at", "actor", "actor_id", "token_id", "token_name", "remote_addr", "via", "action",
    "object_type", "object_id", "object_label", "before", "after", "details",
)  # fmt: skip
#: Rows read from the database at a time while streaming an export.
CHUNK = 500


def as_dict(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.pk,
        "at": event.at.isoformat(),
        "actor": event.actor_name,
        "actor_id": event.actor_id,
        "token_id": event.token_id,
        "token_name": event.token_name,
        "remote_addr": event.remote_addr,
        "via": event.via,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "object_label": event.object_label,
        "before": event.before,
        "after": event.after,
        "details": event.details,
    }


class _Echo:
    """A file that hands back what is written, for ``csv.writer`` to make one line at a time."""

    def write(self, value: str) -> str:
        return value


def csv_lines(events: Iterable[AuditEvent]) -> Iterator[str]:
    """The header, then a line per event; JSON columns as compact JSON. A cell that a
    spreadsheet would run as a formula (=, +, -, @ first) is quoted with a leading '."""
    writer = csv.writer(_Echo())
    yield writer.writerow(COLUMNS)
    for event in events:
        row = as_dict(event)
        cells = [_cell(row[name]) for name in COLUMNS]
        yield writer.writerow(cells)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = (
        json.dumps(value, ensure_ascii=False, sort_keys=True)
        if isinstance(value, dict | list)
        else str(value)
    )
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


@dataclass(frozen=True)
class Change:
    """One key of a before/after pair, as the page shows it."""

    key: str
    before: str
    after: str
    changed: bool


MISSING = "—"


def changes(event: AuditEvent) -> list[Change]:
    """The before/after keys, changed ones first; a value is compact JSON, a missing one "—"."""
    before = event.before if isinstance(event.before, dict) else {}
    after = event.after if isinstance(event.after, dict) else {}
    rows = []
    for key in sorted(set(before) | set(after)):
        old = _shown(before, key)
        new = _shown(after, key)
        rows.append(Change(key, old, new, old != new))
    return sorted(rows, key=lambda c: not c.changed)


def _shown(values: dict[str, Any], key: str) -> str:
    if key not in values:
        return MISSING
    value = values[key]
    if isinstance(value, str):
        return value if value else '""'
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
