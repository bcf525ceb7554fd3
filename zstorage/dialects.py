"""What differs between database vendors for ZStorage, as one object per vendor: the JSON
value expression of a unique index, what PostgreSQL needs before it creates one, and
full-text search. ``dialect()`` is the current connection's one (the one place here that
reads ``connection.vendor``).

The query language's expressions (``zstorage/query/sql.py``) are written per vendor with
Django's own dispatch (``as_postgresql``/``as_sqlite`` on each expression), which the
compiler chooses from the connection; they stay beside the expressions they compile.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from django.db import NotSupportedError, connection
from django.db.models import Q, TextField, Value
from django.db.models.functions import Coalesce

from zstorage.models import Record
from zstorage.query.sql import JsonText


class Dialect:
    vendor = ""

    def json_value(self, key: str) -> str:
        """SQL for ``data[key]`` in an index expression; ``key`` must be validated (it is
        inlined)."""
        raise NotImplementedError

    def before_create_index(self) -> None:
        """Whatever must happen in the transaction before a CREATE INDEX."""

    def search(self, text: str, keys: Sequence[str]) -> Q:
        """Records whose text fields ``keys`` match the search ``text``."""
        raise NotImplementedError


class PostgreSQL(Dialect):
    vendor = "postgresql"

    def json_value(self, key: str) -> str:
        return f"(data ->> '{key}')"

    def before_create_index(self) -> None:
        # PostgreSQL refuses CREATE INDEX on a table with pending deferred foreign-key
        # checks, which records written earlier in the same transaction leave behind: run
        # them now.
        connection.check_constraints()

    def search(self, text: str, keys: Sequence[str]) -> Q:
        """Full-text search (``websearch`` syntax, the ``simple`` configuration)."""
        from django.contrib.postgres.search import SearchQuery, SearchVector

        blank = Value("", output_field=TextField())
        vector = SearchVector(*(Coalesce(JsonText(k), blank) for k in keys), config="simple")
        return Q(
            pk__in=Record.objects.annotate(_fts=vector)
            .filter(_fts=SearchQuery(text, search_type="websearch", config="simple"))
            .values("pk")
        )


class SQLite(Dialect):
    vendor = "sqlite"

    def json_value(self, key: str) -> str:
        return f"json_extract(data, '$.\"{key}\"')"

    def search(self, text: str, keys: Sequence[str]) -> Q:
        """Every word must appear in some text field (case-insensitive)."""
        condition = Q()
        for word in text.split():
            any_field = Q()
            for key in keys:
                any_field |= Q(**{f"data__{key}__icontains": word})
            condition &= any_field
        return condition


def dialect() -> Dialect:
    """The dialect of Django's default database."""
    return _of(connection.vendor)


@functools.cache
def _of(vendor: str) -> Dialect:
    for kind in (PostgreSQL, SQLite):
        if kind.vendor == vendor:
            return kind()
    raise NotSupportedError(f"ZStorage needs PostgreSQL or SQLite, not {vendor}.")
