"""Scenario — what a record write costs in one process, against a bare ORM write of the same
JSON into the same table.

In the bench process itself, on PostgreSQL (no HTTP, no other process): ``zstorage.records``
``create_record`` on a four-field table with no link and on the same table linked to a queue
(creates and updates; no relay runs, the outbox rows stay pending), ``update_record`` of one
field, and ``bulk_create`` of 1,000 rows. Each write is its own transaction, as an API request
is.

Peers — the same guarantee with nothing of ours in the way:
- create: ``Record.objects.create`` in autocommit (one INSERT);
- linked create: the record and its outbox row in one transaction (``transaction.atomic``,
  ``Record.objects.create`` and ``OutboxMessage.objects.create``) — what a hand-written
  transactional outbox does;
- update: ``Record.objects.filter(pk=…).update(data=…, version=F("version") + 1)``;
- bulk: ``Record.objects.bulk_create`` of the same 1,000 rows in one transaction.

Cost = median seconds per write over a timed loop, per repeat, ours and the peer interleaved;
the ratio is ours / peer (lower is better). Target: at most 2x. The round trips of one linked
create (BEGIN and COMMIT included) are counted with Django's query log: target ≤ 3.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench.harness import Limit, Row, Stat, Target, interleave, paired
from bench.options import Options
from bench.setup import Bench

NAME = "record-write"
TITLE = "Record write cost in-process: create, update, bulk against a bare ORM write"

TARGET = Target(2.0, at_least=False)
ROUND_TRIPS = Limit(3.5, unit="round trips")
BULK_ROWS = 1000


def data(i: int) -> dict[str, Any]:
    return {
        "number": f"SO-{i}",
        "total": "129.90",
        "status": "new",
        "notes": "Leave at the back door; the customer works nights.",
    }


def per_write(action: Callable[[int], None], count: int) -> float:
    """Median seconds of ``count`` calls, timed one by one (a slow moment skews no mean)."""
    times = []
    for i in range(count):
        started = time.perf_counter()
        action(i)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


class Writes:
    """The writes under test and their peers, on one bench's tables."""

    def __init__(self, bench: Bench) -> None:
        self.unlinked = bench.linked_table(f"rw-{bench.run_id}", None)
        queue = bench.make_queue("database", "record-write")
        self.linked = bench.linked_table(f"rw-linked-{bench.run_id}", queue)
        self.queue = queue
        self.counter = 0

    def next(self) -> int:
        self.counter += 1
        return self.counter

    # -- ours ---------------------------------------------------------------------------------

    def create(self, table: Any) -> Callable[[int], None]:
        from zstorage import records

        def one(_: int) -> None:
            records.create_record(table, data(self.next()))

        return one

    def update(self, table: Any) -> Callable[[int], None]:
        from zstorage import records

        record = records.create_record(table, data(self.next()))

        def one(i: int) -> None:
            records.update_record(table, record.pk, {"notes": f"n{self.next()}"})

        return one

    def bulk(self, table: Any) -> None:
        from zstorage import records

        records.bulk_create(table, [data(self.next()) for _ in range(BULK_ROWS)])

    # -- peers --------------------------------------------------------------------------------

    def bare_create(self, table: Any) -> Callable[[int], None]:
        from zstorage.models import Record

        def one(_: int) -> None:
            Record.objects.create(table=table, data=data(self.next()))

        return one

    def bare_linked_create(self, table: Any) -> Callable[[int], None]:
        from django.db import transaction

        from queues.models import OutboxMessage
        from zstorage.models import Record

        def one(_: int) -> None:
            with transaction.atomic():
                record = Record.objects.create(table=table, data=data(self.next()))
                message_id = uuid.uuid4()
                OutboxMessage.objects.create(
                    message_id=message_id,
                    queue=self.queue,
                    ordering_key=f"{table.slug}:{record.pk}",
                    body={"message_id": str(message_id), "data": record.data},
                )

        return one

    def bare_update(self, table: Any) -> Callable[[int], None]:
        from django.db.models import F

        from zstorage.models import Record

        record = Record.objects.create(table=table, data=data(self.next()))

        def one(_: int) -> None:
            Record.objects.filter(pk=record.pk).update(
                data={**record.data, "notes": f"n{self.next()}"}, version=F("version") + 1
            )

        return one

    def bare_bulk(self, table: Any) -> None:
        from django.db import transaction

        from zstorage.models import Record

        with transaction.atomic():
            Record.objects.bulk_create(
                [Record(table=table, data=data(self.next())) for _ in range(BULK_ROWS)]
            )


def round_trips(writes: Writes) -> int:
    """Round trips of one linked create in a warm process: Django's query log, which has the
    BEGIN (psycopg sends it on its own before the first statement) and the COMMIT."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    writes.create(writes.linked)(0)  # warm: whatever is cached per process is cached
    with CaptureQueriesContext(connection) as captured:
        writes.create(writes.linked)(0)
    return len(captured.captured_queries)


def run(bench: Bench, options: Options) -> list[Row]:
    repeats, size = options.size(quick=(1, 30), full=(5, 400))
    count = int(size)
    bulk_repeats = 1 if options.quick else 5
    writes = Writes(bench)
    pairs: dict[str, tuple[Callable[[int], None], Callable[[int], None]]] = {
        "create, no link": (writes.create(writes.unlinked), writes.bare_create(writes.unlinked)),
        "create, linked to a queue": (
            writes.create(writes.linked),
            writes.bare_linked_create(writes.linked),
        ),
        "update one field, linked": (
            writes.update(writes.linked),
            writes.bare_update(writes.linked),
        ),
    }
    peers = {
        "create, no link": "bare Record.objects.create",
        "create, linked to a queue": "bare record + outbox row, one transaction",
        "update one field, linked": "bare queryset update",
    }
    for ours, peer in pairs.values():  # warm-up: imports, caches, connections
        ours(0)
        peer(0)
    ms: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in pairs}
    measures = []
    for name, (ours, peer) in pairs.items():
        mine, theirs = ms[name]
        measures.append(lambda _, f=ours, into=mine: into.append(per_write(f, count) * 1000))
        measures.append(lambda _, f=peer, into=theirs: into.append(per_write(f, count) * 1000))
    bulk_ours: list[float] = []
    bulk_peer: list[float] = []

    def timed(action: Callable[[], None], into: list[float]) -> None:
        started = time.perf_counter()
        action()
        into.append((time.perf_counter() - started) * 1000)

    interleave(repeats, *measures)
    interleave(
        bulk_repeats,
        lambda _: timed(lambda: writes.bulk(writes.linked), bulk_ours),
        lambda _: timed(lambda: writes.bare_bulk(writes.linked), bulk_peer),
    )
    rows = [
        paired(NAME, f"{name} (4 fields)", "ms", mine, peers[name], theirs, TARGET)
        for name, (mine, theirs) in ms.items()
    ]
    rows.append(
        paired(
            NAME,
            f"bulk_create {BULK_ROWS:,} rows, linked",
            "ms",
            bulk_ours,
            "bare bulk_create",
            bulk_peer,
            TARGET,
        )
    )
    trips = float(round_trips(writes))
    rows.append(
        Row(
            NAME,
            "round trips of one linked create (BEGIN, COMMIT included)",
            "",
            Stat([trips]),
            "",
            Stat([float("nan")]),
            Stat([float("nan")]),
            ROUND_TRIPS,
        )
    )
    return rows
