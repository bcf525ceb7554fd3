"""Unique indexes that enforce uniqueness rules in the database.

Each unique or unique-together rule owns one partial unique index on ``zstorage_record``,
over the JSON values of its fields and limited to its table, so two concurrent writers
cannot both insert the same value: the loser's INSERT fails and is reported with the rule's
message. Absent values are NULL and never collide.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from django.db import IntegrityError, connection

from zstorage.dialects import dialect
from zstorage.models import KEY_VALIDATOR, Rule

INDEX_PREFIX = "zstorage_uniq_"
_INDEX_IN_MESSAGE = re.compile(INDEX_PREFIX + r"(\d+)")


def index_name(rule: Rule) -> str:
    return f"{INDEX_PREFIX}{rule.pk}"


def _json_value(key: str) -> str:
    KEY_VALIDATOR(key)  # keys are inlined into SQL: only [a-z0-9_] may pass
    return dialect().json_value(key)


def create_unique_index(rule: Rule, keys: Sequence[str]) -> None:
    """Create the rule's index; raises IntegrityError if existing records already collide."""
    columns = ", ".join(_json_value(key) for key in keys)
    dialect().before_create_index()
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE UNIQUE INDEX {index_name(rule)} ON zstorage_record ({columns}) "
            f"WHERE table_id = {int(rule.table_id)}"
        )


def drop_unique_index(rule: Rule) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS {index_name(rule)}")


def violated_rule_id(error: IntegrityError) -> int | None:
    """The id of the uniqueness rule whose index refused a write, if that is what happened."""
    cause = error.__cause__
    diag = getattr(cause, "diag", None)
    name = getattr(diag, "constraint_name", None) or str(error)
    match = _INDEX_IN_MESSAGE.search(name)
    return int(match.group(1)) if match else None
