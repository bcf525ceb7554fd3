"""How the database queue's errors leave it: as ``BrokerUnavailable``, like any engine's."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import DatabaseError, connection

from queues.errors import BrokerUnavailable


@contextlib.contextmanager
def database_errors(doing: str) -> Iterator[None]:
    """A ``DatabaseError`` leaves as ``BrokerUnavailable``; a connection it left unusable is
    closed (outside a transaction: the next query opens a new one), as the request cycle
    does."""
    try:
        yield
    except DatabaseError as exc:
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()
        raise BrokerUnavailable(f"The database queue failed while {doing}: {exc}") from exc
