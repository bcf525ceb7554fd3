"""The end-to-end scenario's record writer, a process of its own (its Django may be on the
SQLite file the relay and the worker use, while the bench process's is on PostgreSQL).

``python -m bench.e2e_writer setup --table SLUG --queue NAME``
    create a database queue NAME, the bench's orders-like table SLUG and a link from the table
    to the queue with the ``bench-e2e`` handler (for the SQLite configuration; on PostgreSQL
    the bench process does the same in its own database); prints ``{"queue": id, "table": id}``.

``python -m bench.e2e_writer write --table SLUG``
    prints ``ready``, then for each line ``COUNT RATE START INDEX STRIDE`` read from stdin
    creates records through ``zstorage.records.create_record`` (the one write path: outbox row
    in the same transaction, whose NOTIFY PostgreSQL delivers at commit): writes INDEX,
    INDEX + STRIDE, … below COUNT of a schedule of RATE writes per second starting at START
    (``time.time()``), and prints one JSON line ``{"writes": [[record_id, committed], ...],
    ...}``; ``committed`` is ``time.time()`` taken the moment the commit returned (an
    ``on_commit`` callback registered before any of the write's own, so it runs first). Exits
    at end of input.

A write takes 10-25 ms on a busy 2-core machine, so one process cannot hold 100 writes/s: the
scenario runs STRIDE writer processes, each taking every STRIDE-th write of one schedule, as
that many web workers would.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from functools import partial
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from queues.models import Queue
    from zstorage.models import Table

HANDLER = "bench-e2e"


def linked_table(slug: str, queue: Queue) -> Table:
    """The table of ``Bench.linked_table``, linked to ``queue`` with the ``bench-e2e`` handler
    (the scenario only creates records)."""
    from bench.queues import orders_table

    return orders_table(slug, queue, handler=HANDLER)


def setup(table_slug: str, queue_name: str) -> dict[str, int]:
    from queues.models import Queue

    queue = Queue(name=queue_name, type="database", url="")
    queue.full_clean()
    queue.save()
    table = linked_table(table_slug, queue)
    return {"queue": queue.pk, "table": table.pk}


def _stamp(into: list[float]) -> None:
    into.append(time.time())


def write(
    table: Table, count: int, rate: float, start: float, index: int, stride: int
) -> dict[str, Any]:
    """Writes ``index``, ``index + stride``, … below ``count`` of a schedule of ``rate`` writes
    per second from ``start`` (wall clock, shared by the ``stride`` writer processes). Open
    loop: a write that falls behind its time is made at once, the schedule does not move."""
    from django.db import transaction

    from zstorage import records

    writes: list[tuple[int, float]] = []
    durations: list[float] = []
    late = 0.0
    for i in range(index, count, stride):
        pause = start + i / rate - time.time()
        if pause > 0:
            time.sleep(pause)  # the write schedule, not synchronisation
        else:
            late = max(late, -pause)
        committed: list[float] = []
        began = time.perf_counter()
        with transaction.atomic():
            # Registered before any callback of the write's own: runs first after COMMIT.
            transaction.on_commit(partial(_stamp, committed))
            record = records.create_record(
                table,
                {
                    "number": f"E-{start:.0f}-{i}",
                    "total": "129.90",
                    "status": "new",
                    "notes": "x" * 80,
                },
            )
        durations.append(time.perf_counter() - began)
        writes.append((record.pk, committed[0]))
    return {"writes": writes, "late": late, "durations": durations}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e_writer")
    parser.add_argument("action", choices=["setup", "write"])
    parser.add_argument("--table", required=True)
    parser.add_argument("--queue")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quaymaster.settings")
    import django

    django.setup()
    if args.action == "setup":
        print(json.dumps(setup(args.table, args.queue)), flush=True)
        return
    from zstorage.models import Table

    table = Table.objects.get(slug=args.table)  # connects, so the first write does not
    print("ready", flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        count, rate, start, index, stride = line.split()
        result = write(table, int(count), float(rate), float(start), int(index), int(stride))
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
