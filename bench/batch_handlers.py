"""The workers scenario's batch row: the same order records written by a batch handler (one
``ctx.records.bulk_create`` per table per batch of up to 100) and by a single handler (one
``ctx.records.create`` per message), each in a ``runworker --concurrency 10 --handlers-module
bench.batch_handlers`` process, drained the same way as the no-op rows (``drain_rate``), and
each drain checked to have written every record (a message dead-lettered would count as
consumed). A message is ``{"handler": …, "table": "<slug>", "data": {…}}``.

On RabbitMQ: its worker loop is the closest to its bare loop, so the row shows the handlers'
write path; on the database queue the queue's own claims and acknowledgements would share
PostgreSQL with the records written, and that backend is being reworked beside this.

The handlers are what the worker processes import; ``batch_row`` (the bench process's side)
imports the scenario's tools only when called.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from workers.context import BatchContext, BatchMessage, Context
from workers.registry import handler
from zstorage.models import Table

if TYPE_CHECKING:
    from collections.abc import Callable

    from bench.harness import Row
    from bench.setup import Bench

SINGLE = "bench-record"
BATCH = "bench-records-batch"
BATCH_SIZE = 100
#: Messages per drain (full, --quick).
COUNTS = (3_000, 300)

_tables: dict[str, Table] = {}  # by slug: the table row does not change during a run


def _table(slug: str) -> Table:
    if slug not in _tables:
        _tables[slug] = Table.objects.get(slug=slug)
    return _tables[slug]


def body(handler_name: str, slug: str, n: int) -> bytes:
    """Message ``n`` for ``handler_name``: one order for the table ``slug``."""
    data = {"number": f"ord-{n}", "total": f"{n % 1000}.50", "status": "paid", "notes": "bench"}
    message = {"handler": handler_name, "table": slug, "data": data}
    return json.dumps(message, separators=(",", ":")).encode()


@handler(SINGLE)
def one_record(message: dict[str, Any], ctx: Context) -> None:
    ctx.records.create(_table(message["table"]), message["data"])
    ctx.ack()


@handler(BATCH, batch=BATCH_SIZE, max_wait=0.2)
def many_records(messages: list[BatchMessage], ctx: BatchContext) -> None:
    by_table: dict[str, list[BatchMessage]] = defaultdict(list)
    for message in messages:
        by_table[message["table"]].append(message)
    for slug, group in by_table.items():
        ctx.records.bulk_create(_table(slug), [message["data"] for message in group])
    ctx.ack_all()


def batch_row(bench: Bench, quick: bool, repeats: int, details: dict[str, Any]) -> Row:
    """Records written per second: the batch handler against the single handler. What is
    "left" is the records not written yet (RabbitMQ's ready count would miss the messages a
    worker holds prefetched), so the drain ends when the last record is in the table."""
    from bench.harness import interleave, paired
    from bench.scenarios.workers import NAME, drain_rate, fill_rabbitmq, ours
    from zstorage.models import Record

    count = COUNTS[1 if quick else 0]
    details["records"] = {"messages": count, "batch": BATCH_SIZE}
    table = bench.linked_table(f"bench-{bench.run_id}-batch-records", None)
    progress = {"base": 0, "filled": 0}

    def written() -> int:
        return int(Record.objects.filter(table=table).count()) - progress["base"]

    def left() -> int:
        return max(0, progress["filled"] - written())

    results: dict[str, list[float]] = {}
    measures: list[Callable[[int], None]] = []
    for key, handler_name in (("batch", BATCH), ("single", SINGLE)):
        queue = bench.make_queue("rabbitmq", f"records-{key}", visibility_timeout=30)
        start = ours(bench, queue, 10, __name__, f"records-{key}")

        def fill(n: int, name: str = queue.name, handler_name: str = handler_name) -> None:
            progress["filled"] = n
            fill_rabbitmq(name, n, lambda i: body(handler_name, table.slug, i))

        def one(_: int, key: str = key, fill: Any = fill, start: Any = start) -> None:
            progress.update(base=0, filled=0)
            progress["base"] = written()
            rate = drain_rate(f"records-{key}", count, fill, left, start, 600.0)
            results.setdefault(key, []).append(rate)

        measures.append(one)
    interleave(repeats, *measures)
    return paired(
        NAME,
        "rabbitmq, records written, batch handler (100) c=10",
        "msg/s",
        results["batch"],
        "one create_record per message",
        results["single"],
    )
