"""PostgreSQL LISTEN sessions for the wake-ups (the relay's outbox channel, a database queue's
channel): a connection of its own, outside Django's, in autocommit so notifications arrive as
soon as their transaction commits."""

from __future__ import annotations

from typing import Any

from django.db import connection


def listen(channel: str) -> Any:
    """A psycopg connection with Django's settings, LISTENing on ``channel`` (close it, or use
    it as a context manager). Raises ``psycopg.Error`` when the database is unreachable."""
    import psycopg

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    listener = psycopg.connect(**params, autocommit=True)
    try:
        listener.execute(f'LISTEN "{channel}"')
    except psycopg.Error:
        listener.close()
        raise
    return listener
