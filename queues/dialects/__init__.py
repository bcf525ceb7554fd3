"""Per-vendor SQL for queues (and the workers above them): ``dialect()`` is the current
connection's one, chosen from its vendor once and kept. See ``base.Dialect`` for what a
dialect holds; this is the one place that reads ``connection.vendor`` for them."""

from __future__ import annotations

import functools

from django.db import NotSupportedError, connection

from queues.dialects.base import Dialect, Listener, NewOutboxRow, OutboxHead, Renewal

__all__ = ["Dialect", "Listener", "NewOutboxRow", "OutboxHead", "Renewal", "dialect"]


def dialect() -> Dialect:
    """The dialect of Django's default database."""
    return _of(connection.vendor)


@functools.cache
def _of(vendor: str) -> Dialect:
    if vendor == "postgresql":
        from queues.dialects.postgresql import PostgreSQL

        return PostgreSQL()
    if vendor == "sqlite":
        from queues.dialects.sqlite import SQLite

        return SQLite()
    raise NotSupportedError(f"Quaymaster's queues need PostgreSQL or SQLite, not {vendor}.")
