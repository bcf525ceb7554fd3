"""What differs between database vendors for ZStorage, as one object per vendor: the record
writes' statements, the JSON value expression of a unique index, what PostgreSQL needs before
it creates one, and full-text search. ``dialect()`` is the current connection's one (the one
place here that reads ``connection.vendor``).

The query language's expressions (``zstorage/query/sql.py``) are written per vendor with
Django's own dispatch (``as_postgresql``/``as_sqlite`` on each expression), which the
compiler chooses from the connection; they stay beside the expressions they compile.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Sequence
from typing import Any

from django.db import NotSupportedError, connection
from django.db.models import Q, TextField, Value
from django.db.models.functions import Coalesce

from zstorage.models import Record, RecordChange, Table
from zstorage.query.sql import JsonText

RECORDS = Record._meta.db_table
CHANGES = RecordChange._meta.db_table
TABLES = Table._meta.db_table
#: Rows per INSERT statement of a bulk write (well under either vendor's parameter limit).
CHUNK = 1000

#: The columns a locked read of a record returns, its table's schema token last.
LockedRow = tuple[int, dict[str, Any], int, dt.datetime, dt.datetime, Any, Any, str]
LOCK_RECORD = (
    "SELECT r.id, r.data, r.version, r.created_at, r.updated_at, r.created_by_id, "
    f"r.updated_by_id, t.schema_token FROM {RECORDS} r JOIN {TABLES} t ON t.id = r.table_id "
    "WHERE r.id = %s AND r.table_id = %s"
)


class Dialect:
    """Record writes are plain SQL (a create was nine ORM statements, a third of its CPU in
    Django's compiler). A create's INSERT inserts only while the table still holds the schema
    token its data was validated under (``zstorage.schema_cache``): otherwise it inserts
    nothing, and the caller validates again under the new schema."""

    vendor = ""
    #: What the locked read adds to lock the record (nothing where rows do not lock).
    lock_clause = ""

    # -- record writes ------------------------------------------------------------------------

    def insert_records(
        self, table_id: int, token: str, datas: Sequence[str], actor_id: Any, at: dt.datetime
    ) -> list[int]:
        """Insert records (JSON texts) in order; the new ids, in the same order (none when
        the table no longer holds ``token``)."""
        raise NotImplementedError

    def insert_changes(
        self,
        table_id: int,
        rows: Sequence[tuple[int, str, int, str]],
        actor_id: Any,
        at: dt.datetime,
    ) -> None:
        """Audit rows: (record id, kind, version, changes as JSON text)."""
        raise NotImplementedError

    def create_record(
        self,
        table_id: int,
        token: str,
        data: str,
        changes: str,
        actor_id: Any,
        at: dt.datetime,
    ) -> int | None:
        """Insert one record and its audit row; its id, or None when nothing was inserted."""
        ids = self.insert_records(table_id, token, [data], actor_id, at)
        if not ids:
            return None
        self.insert_changes(table_id, [(ids[0], "create", 1, changes)], actor_id, at)
        return ids[0]

    def update_record(
        self,
        table_id: int,
        record_id: int,
        data: str,
        version: int,
        changes: str,
        actor_id: Any,
        at: dt.datetime,
    ) -> None:
        """Write a locked record's new data and version, and its audit row."""
        raise NotImplementedError

    def lock_record(self, table_id: int, record_id: int) -> LockedRow | None:
        """The record, locked for the caller's transaction where rows lock, and its table's
        schema token, in one statement."""
        with connection.cursor() as cursor:
            cursor.execute(LOCK_RECORD + self.lock_clause, [record_id, table_id])
            row = cursor.fetchone()
        if row is None:
            return None
        pk, data, version, created, updated, created_by, updated_by, token = row
        if isinstance(data, str):
            data = json.loads(data)
        created, updated = self._read_at(created), self._read_at(updated)
        return pk, data, version, created, updated, created_by, updated_by, token

    def _read_at(self, value: Any) -> dt.datetime:
        return value

    # -- indexes and search ---------------------------------------------------------------------

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
    """A create is one statement (record and audit row in one CTE), an update two (the locked
    read, then the update and its audit row)."""

    vendor = "postgresql"
    lock_clause = " FOR UPDATE OF r"

    # Many rows travel as one JSON document, one parameter: psycopg parses a statement's text
    # for its placeholders, which for a thousand rows of VALUES cost more than the INSERT.
    INSERT_RECORDS = (
        f"INSERT INTO {RECORDS} (table_id, data, version, created_at, updated_at, "
        "created_by_id, updated_by_id) "
        "SELECT t.id, v.data, 1, %s, %s, %s, %s "
        "FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS v(data, n) "
        f"JOIN {TABLES} t ON t.id = %s AND t.schema_token = %s "
        "ORDER BY v.n RETURNING id"
    )
    INSERT_CHANGES = (
        f"INSERT INTO {CHANGES} (table_id, record_id, kind, version, changes, actor_id, at) "
        "SELECT %s, v.record_id, v.kind, v.version, v.changes, %s, %s "
        "FROM ROWS FROM (jsonb_to_recordset(%s::jsonb) "
        "AS (record_id bigint, kind text, version int, changes jsonb)) "
        "WITH ORDINALITY AS v(record_id, kind, version, changes, n) ORDER BY v.n"
    )

    def insert_records(
        self, table_id: int, token: str, datas: Sequence[str], actor_id: Any, at: dt.datetime
    ) -> list[int]:
        document = "[" + ", ".join(datas) + "]"
        with connection.cursor() as cursor:
            cursor.execute(
                self.INSERT_RECORDS, [at, at, actor_id, actor_id, document, table_id, token]
            )
            return [row[0] for row in cursor.fetchall()]

    def insert_changes(
        self,
        table_id: int,
        rows: Sequence[tuple[int, str, int, str]],
        actor_id: Any,
        at: dt.datetime,
    ) -> None:
        document = (
            "["
            + ", ".join(
                f'{{"record_id": {pk}, "kind": "{kind}", "version": {version}, '
                f'"changes": {changes}}}'
                for pk, kind, version, changes in rows
            )
            + "]"
        )
        with connection.cursor() as cursor:
            cursor.execute(self.INSERT_CHANGES, [table_id, actor_id, at, document])

    CREATE_RECORD = (
        f"WITH r AS (INSERT INTO {RECORDS} (table_id, data, version, created_at, updated_at, "
        "created_by_id, updated_by_id) "
        f"SELECT t.id, %s::jsonb, 1, %s, %s, %s, %s FROM {TABLES} t "
        "WHERE t.id = %s AND t.schema_token = %s RETURNING id), "
        f"a AS (INSERT INTO {CHANGES} (table_id, record_id, kind, version, changes, actor_id, "
        "at) SELECT %s, r.id, 'create', 1, %s::jsonb, %s, %s FROM r) "
        "SELECT id FROM r"
    )
    UPDATE_RECORD = (
        f"WITH u AS (UPDATE {RECORDS} SET data = %s::jsonb, version = %s, updated_at = %s, "
        "updated_by_id = %s WHERE id = %s RETURNING id) "
        f"INSERT INTO {CHANGES} (table_id, record_id, kind, version, changes, actor_id, at) "
        "SELECT %s, u.id, 'update', %s, %s::jsonb, %s, %s FROM u"
    )

    def create_record(
        self,
        table_id: int,
        token: str,
        data: str,
        changes: str,
        actor_id: Any,
        at: dt.datetime,
    ) -> int | None:
        with connection.cursor() as cursor:
            cursor.execute(
                self.CREATE_RECORD,
                [
                    data,
                    at,
                    at,
                    actor_id,
                    actor_id,
                    table_id,
                    token,
                    table_id,
                    changes,
                    actor_id,
                    at,
                ],
            )
            row = cursor.fetchone()
        return None if row is None else int(row[0])

    def update_record(
        self,
        table_id: int,
        record_id: int,
        data: str,
        version: int,
        changes: str,
        actor_id: Any,
        at: dt.datetime,
    ) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                self.UPDATE_RECORD,
                [data, version, at, actor_id, record_id, table_id, version, changes, actor_id, at],
            )

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
    """One writer at a time and in-process calls: plain statements, one after the other."""

    vendor = "sqlite"

    INSERT_RECORDS = (
        f"INSERT INTO {RECORDS} (table_id, data, version, created_at, updated_at, "
        "created_by_id, updated_by_id) "
        "SELECT t.id, v.column1, 1, %s, %s, %s, %s FROM (VALUES {values}) AS v "
        f"JOIN {TABLES} t ON t.id = %s AND t.schema_token = %s "
        "ORDER BY v.column2 RETURNING id"
    )
    INSERT_CHANGES = (
        f"INSERT INTO {CHANGES} (table_id, record_id, kind, version, changes, actor_id, at) "
        "VALUES {values}"
    )
    UPDATE_RECORD = (
        f"UPDATE {RECORDS} SET data = %s, version = %s, updated_at = %s, updated_by_id = %s "
        "WHERE id = %s"
    )

    def insert_records(
        self, table_id: int, token: str, datas: Sequence[str], actor_id: Any, at: dt.datetime
    ) -> list[int]:
        ids: list[int] = []
        when = self._at(at)
        for start in range(0, len(datas), CHUNK):
            chunk = datas[start : start + CHUNK]
            values = ", ".join([f"(%s, {n})" for n in range(len(chunk))])
            with connection.cursor() as cursor:
                cursor.execute(
                    self.INSERT_RECORDS.format(values=values),
                    [when, when, actor_id, actor_id, *chunk, table_id, token],
                )
                ids += [row[0] for row in cursor.fetchall()]
        return ids

    def insert_changes(
        self,
        table_id: int,
        rows: Sequence[tuple[int, str, int, str]],
        actor_id: Any,
        at: dt.datetime,
    ) -> None:
        when = self._at(at)
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            params: list[Any] = []
            for record_id, kind, version, changes in chunk:
                params += [table_id, record_id, kind, version, changes, actor_id, when]
            values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
            with connection.cursor() as cursor:
                cursor.execute(self.INSERT_CHANGES.format(values=values), params)

    def update_record(
        self,
        table_id: int,
        record_id: int,
        data: str,
        version: int,
        changes: str,
        actor_id: Any,
        at: dt.datetime,
    ) -> None:
        with connection.cursor() as cursor:
            cursor.execute(self.UPDATE_RECORD, [data, version, self._at(at), actor_id, record_id])
        self.insert_changes(table_id, [(record_id, "update", version, changes)], actor_id, at)

    def _at(self, at: dt.datetime) -> Any:
        return connection.ops.adapt_datetimefield_value(at)

    def _read_at(self, value: Any) -> dt.datetime:
        convert = connection.ops.convert_datetimefield_value  # type: ignore[attr-defined]
        return convert(value, None, connection)

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
