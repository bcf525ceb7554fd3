"""The write seam: every record create, update and delete emits one ``RecordChanged``
inside the write's transaction; one call writing many records sends them in one signal.

Receivers run in that transaction, so what they write (the queues app's outbox rows) commits
or rolls back with the record, and an exception in a receiver undoes the whole write.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.dispatch import Signal

from zstorage.models import EventKind, Table

#: Sent with ``events=[RecordChanged, …]`` (one per record written by one call, in order) by
#: ``zstorage.records`` only.
record_changed = Signal()


@dataclass(frozen=True)
class RecordChanged:
    kind: EventKind
    table: Table
    record_id: int
    version: int
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    changed_fields: list[str]
    actor: AbstractBaseUser | None
    at: dt.datetime

    @property
    def data(self) -> dict[str, Any]:
        """The record as it is after the change (as it was, for a delete)."""
        return (self.new if self.new is not None else self.old) or {}


def emit(events: list[RecordChanged]) -> None:
    if events:
        record_changed.send(sender=RecordChanged, events=events)


def changed_fields(old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[str]:
    old, new = old or {}, new or {}
    return sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key))
