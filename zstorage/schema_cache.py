"""A table's schema cached per process, under the table's ``schema_token``.

A record write needs the table's fields and rules, and the queues app needs its links; read on
every write they were about half of a create's time. Each process keeps them per table, under
the token the table row carried when they were read. Whatever a write depends on changing
(a field, a rule, a link, a linked queue) sets a new random token by database trigger
(migrations ``zstorage/0004`` and ``queues/0005``), so a queryset update or raw SQL counts
too, and a rollback keeps the old token.

The token is checked where it cannot be stale: the write's own INSERT (or its locked read of
an update) runs only while the table row still holds the token the cached schema was read
under. A write that finds another token reloads the schema and validates again, so a schema
changed by another process takes effect at its next write, with no timeout.

Other apps cache what they derive from a table (the queues app: its links, compiled filters)
in ``TableSchema.extras``, which goes with the schema when the token changes.
"""

from __future__ import annotations

import threading

from zstorage.models import Table
from zstorage.validation import TableSchema

#: Tables kept per process; beyond it the cache starts again (a platform has tens of tables).
MAX_TABLES = 2000

_cache: dict[int, TableSchema] = {}
_lock = threading.Lock()


def current_token(table_id: int) -> str | None:
    """The token in the database now (None: no such table)."""
    return Table.objects.filter(pk=table_id).values_list("schema_token", flat=True).first()


def schema_for(table: Table) -> TableSchema:
    """The schema as of ``table.schema_token``: cached, or read now (and then ``table``
    carries the token read with it)."""
    cached = _cache.get(table.pk)
    if cached is not None and cached.token == table.schema_token:
        cached.table = table
        return cached
    return reload(table)


def reload(table: Table) -> TableSchema:
    """Read the token, then the schema, and cache them; ``table`` gets the token."""
    token = current_token(table.pk)
    if token is None:
        raise Table.DoesNotExist(f"Table {table.pk} no longer exists.")
    table.schema_token = token
    schema = TableSchema.load(table, token)
    with _lock:
        if len(_cache) >= MAX_TABLES:
            _cache.clear()
        _cache[table.pk] = schema
    return schema
