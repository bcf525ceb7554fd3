"""Small builders for ZStorage tests: tables, fields and rules go through ``zstorage.schema``
(the same path the back-office takes), so every test starts from a schema a user could make."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.contrib.auth.models import User

from zstorage import schema
from zstorage.events import RecordChanged, record_changed
from zstorage.models import Field, Rule, Table

_numbers = itertools.count(1)


def make_table(slug: str | None = None, name: str | None = None) -> Table:
    slug = slug or f"table-{next(_numbers)}"
    return schema.create_table(name=name or slug.replace("-", " ").title(), slug=slug)


def make_field(table: Table, key: str, type: str = "text", **attrs: Any) -> Field:
    attrs.setdefault("name", key.replace("_", " ").capitalize())
    return schema.add_field(table, key=key, type=type, **attrs)


def make_rule(
    table: Table,
    kind: str,
    message: str | None = None,
    *,
    on: Field | None = None,
    **params: Any,
) -> Rule:
    """A rule on field ``on`` (or on the table); keyword arguments are its params."""
    if message is None:
        message = f"{kind} failed on {on.key if on else 'the table'}"
    return schema.add_rule(table, kind, message, field=on, params=params)


def make_user(username: str = "ada") -> User:
    # No password: hashing one is the slowest thing a test here would do.
    return User.objects.create_user(username)


def contacts_table(slug: str = "contacts") -> Table:
    """A table most record tests share: a unique email, a name and an age."""
    table = make_table(slug)
    make_field(table, "name", required=True)
    email = make_field(table, "email", "email")
    make_field(table, "age", "integer")
    make_rule(table, "unique", "This email is already registered.", on=email)
    return table


@contextmanager
def captured_events() -> Iterator[list[RecordChanged]]:
    """Collect every ``record_changed`` event sent while the block runs."""
    collected: list[RecordChanged] = []

    def receiver(sender: object, events: list[RecordChanged], **kwargs: Any) -> None:
        collected.extend(events)

    record_changed.connect(receiver, weak=False)
    try:
        yield collected
    finally:
        record_changed.disconnect(receiver)
