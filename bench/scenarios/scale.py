"""Scenario 7 — how cost grows with size.

All on the bench's PostgreSQL; rows are loaded with ``COPY`` (``bench/scale_load.py``, which
also draws the plots), then ``VACUUM ANALYZE``d as autovacuum would after a bulk load.

1. **Record queries** at 10k, 100k and 1M records of one orders table (grown in place:
   10k → 100k → 1M). Ours: the Record API's read path, ``zstorage.reads`` (``fields_of``,
   ``records_for``, ``parse_sort``, ``cursor_page`` with the view's ``select_related``: the
   page of 50 and its ``total``), without the serializer. Peer: the same page written by hand
   (``SELECT … WHERE table_id = … AND data->>'x' = … ORDER BY … LIMIT 50``) on the same table
   and connection. Queries, each timed alternately with its peer:

   * *indexed filter*: equality on ``number``, which has a unique rule, so a unique index on
     ``data->>'number'`` (``zstorage/indexes.py``); our query is compiled to jsonb containment
     (``data @> …``), which the GIN index over ``data`` (``jsonb_path_ops``, migration 0002)
     serves, as it does equality on any text, integer or boolean field;
   * *non-indexed filter*: equality on the decimal ``total`` (compared as NUMERIC, which no
     index serves);
   * *sort*: the first page by ``-total``;
   * *page*: the first page of 50 in id order, no filter.

   p50 and p99 per size; target: p50 of the indexed filter at 1M < 20 ms.
2. **Relay drain rate** with 1,000 and with 1,000,000 pending outbox rows: ``manage.py relay``
   (default options) publishing to Kafka (the database queue when ``--engine`` leaves Kafka
   out); the count comes from the engine (topic end offsets, or the queue's rows). At 1,000:
   fills of 1,000 rows, each drained, ten before and ten after the million (A-B-A, so a busy
   minute of the shared machine does not land on one side only; each side its own queue); at
   1,000,000: the first 20,000 published, timed per 2,000. The million is loaded while its
   queue is disabled, ``VACUUM ANALYZE``d, then the queue enabled and the relay woken: the
   clock starts there. Ratio: 1M / 1k rate, target ≥ 0.8.
3. **Database-queue claim** at depth 1,000 and 1,000,000 (two queues side by side in the
   table): ``fetch(1)`` + ``ack`` through the database backend, ``N`` times at each depth in
   blocks of ``N/6``, the order rotating; p50 and p99 of the pair (the claim alone in the
   details).

Plots: ``scale-records.png``, ``scale-relay.png``, ``scale-claim.png`` beside the run's JSON.
"""

from __future__ import annotations

import itertools
import math
import random
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from bench.harness import Limit, Row, Stat, Target, percentile
from bench.options import BenchError, Options
from bench.processes import RelayProcess
from bench.scale_load import (
    copy_rows,
    delete_where,
    draw,
    message_rows,
    outbox_rows,
    published_counter,
    record_rows,
    results_dir,
    total_of,
    vacuum_analyze,
)
from bench.setup import Bench

NAME = "scale"
TITLE = "Scale: record queries at 10k-1M records, relay at 1M pending, claim at depth 1M"

INDEXED_TARGET = Limit(20, unit="ms")
RELAY_TARGET = Target(0.8)
PAGE = 50


@dataclass(frozen=True)
class Sizes:
    records: tuple[int, ...]
    budget: float  # seconds per query and size (ours and peer together)
    pairs: tuple[int, int]  # at least, at most
    relay_small: int
    relay_big: int
    relay_window: int
    relay_step: int
    claim_depths: tuple[int, ...]
    claims: int


FULL = Sizes(
    (10_000, 100_000, 1_000_000),
    4.0,
    (15, 300),
    1_000,
    1_000_000,
    20_000,
    2_000,
    (1_000, 1_000_000),
    300,
)
QUICK = Sizes((1_000, 5_000), 0.3, (3, 30), 200, 5_000, 1_000, 200, (1_000, 5_000), 30)


def run(bench: Bench, options: Options) -> list[Row]:
    sizes = QUICK if options.quick else FULL
    rows: list[Row] = []
    details: dict[str, Any] = {}
    bench.details[NAME] = details
    parts: list[tuple[str, Callable[[], list[Row]]]] = [
        ("records", lambda: records_part(bench, sizes, details)),
        ("relay", lambda: relay_part(bench, options, sizes, details)),
        ("claim", lambda: claim_part(bench, sizes, details)),
    ]
    for part, measure in parts:
        # A part that fails (minutes into a run) leaves the others' figures: its row says
        # INVALID, with no numbers, and the traceback is in the details.
        try:
            rows += measure()
        except Exception:
            traceback.print_exc()
            details.setdefault("failed", {})[part] = traceback.format_exc()[-4000:]
            nan = Stat([math.nan])
            rows.append(
                Row(f"{NAME}/{part}", "failed: see details", "", nan, "", nan, nan, errors=1)
            )
    try:
        details["plots"] = draw(details, results_dir())
    except Exception:
        traceback.print_exc()
        details.setdefault("failed", {})["plots"] = traceback.format_exc()[-4000:]
    return rows


# -- 1. record queries --------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    key: str
    label: str
    query: dict[str, Any] | None
    sort: str
    sql: str  # after "WHERE table_id = {table}"; %s params from ``params``
    params: tuple[Any, ...]


PROBE = 4321  # the record the filters look for: present at every size


def queries() -> list[Query]:
    number, total = f"SO-{PROBE:07d}", total_of(PROBE)
    return [
        Query(
            "indexed",
            "filter =, indexed field",
            {"number": number},
            "",
            "AND data->>'number' = %s ORDER BY id",
            (number,),
        ),
        Query(
            "non-indexed",
            "filter =, non-indexed field",
            {"total": total},
            "",
            "AND (data->>'total')::numeric = %s::numeric ORDER BY id",
            (total,),
        ),
        Query(
            "sort",
            "sort by a field",
            None,
            "-total",
            "ORDER BY (data->>'total')::numeric DESC NULLS LAST, id",
            (),
        ),
        Query("page", "page of 50", None, "", "ORDER BY id", ()),
    ]


def ours(table: Any, spec: Query) -> int:
    """One page as the Record API reads it (``zstorage/api/record_views.py``'s ``_read_page``
    without the serializer)."""
    from zstorage import reads

    fields = reads.fields_of(table)
    found = reads.records_for(table, query=spec.query, fields=fields)
    page = reads.cursor_page(
        found.select_related("table", "created_by", "updated_by"),
        reads.parse_sort(spec.sort, fields),
        fields,
        size=PAGE,
    )
    return len(page.records)


def peer(table: Any, spec: Query) -> int:
    from django.db import connection

    sql = (
        "SELECT id, table_id, data, version, created_at, updated_at, created_by_id, "
        f"updated_by_id FROM zstorage_record WHERE table_id = {int(table.pk)} "
        f"{spec.sql} LIMIT {PAGE}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, spec.params)
        return len(cursor.fetchall())


def timed_pairs(
    first: Callable[[], int], second: Callable[[], int], sizes: Sizes
) -> tuple[list[float], list[float]]:
    """Alternate ``first`` and ``second`` (order swapped every pair) until the time budget is
    spent, between ``sizes.pairs`` pairs; one warm-up pair is discarded. Milliseconds."""
    fewest, most = sizes.pairs
    a: list[float] = []
    b: list[float] = []
    first(), second()
    started = time.perf_counter()
    while len(a) < most and (len(a) < fewest or time.perf_counter() - started < sizes.budget):
        order = ((first, a), (second, b)) if len(a) % 2 == 0 else ((second, b), (first, a))
        for call, out in order:
            began = time.perf_counter()
            call()
            out.append((time.perf_counter() - began) * 1000)
    return a, b


def records_part(bench: Bench, sizes: Sizes, details: dict[str, Any]) -> list[Row]:
    from zstorage import schema
    from zstorage.models import Record

    table = bench.linked_table(f"scale-{bench.run_id}", None)
    number = table.fields.get(key="number")
    schema.add_rule(table, "unique", "Order numbers are unique.", field=number)
    specs = queries()
    results: dict[str, dict[int, dict[str, float]]] = {s.key: {} for s in specs}
    loaded = 0
    load_seconds: dict[int, float] = {}
    for size in sizes.records:
        began = time.perf_counter()
        copy_rows(Record, ["data"], record_rows(loaded, size), {"table_id": table.pk})
        vacuum_analyze(Record)
        load_seconds[size] = round(time.perf_counter() - began, 2)
        loaded = size
        for spec in specs:
            if ours(table, spec) != peer(table, spec):
                raise BenchError(f"scale: {spec.key} at {size}: ours and the peer disagree")
            mine, theirs = timed_pairs(
                partial(ours, table, spec), partial(peer, table, spec), sizes
            )
            results[spec.key][size] = {
                "p50": percentile(mine, 50),
                "p99": percentile(mine, 99),
                "peer_p50": percentile(theirs, 50),
                "peer_p99": percentile(theirs, 99),
                "samples": len(mine),
            }
        print(f"   scale: {size:,} records measured", flush=True)
    details["records"] = {
        "sizes": list(sizes.records),
        "load_seconds": load_seconds,
        "queries": {s.key: {"label": s.label, "query": s.query, "sort": s.sort} for s in specs},
        "results": {k: {str(n): v for n, v in r.items()} for k, r in results.items()},
    }
    delete_where(Record, "table_id", table.pk)

    largest = sizes.records[-1]
    rows: list[Row] = []
    for spec in specs:
        for size in sizes.records:
            r = results[spec.key][size]
            target = INDEXED_TARGET if spec.key == "indexed" and size == largest else None
            rows.append(
                _row(
                    f"{NAME}/records",
                    f"{spec.label}, {size:,} records: p50",
                    r["p50"],
                    "hand-written SQL",
                    r["peer_p50"],
                    target,
                )
            )
        r = results[spec.key][largest]
        rows.append(
            _row(
                f"{NAME}/records",
                f"{spec.label}, {largest:,} records: p99",
                r["p99"],
                "hand-written SQL",
                r["peer_p99"],
            )
        )
    return rows


def _row(
    scenario: str,
    measure: str,
    mine: float,
    peer_name: str,
    theirs: float,
    target: Target | None = None,
    unit: str = "ms",
) -> Row:
    ratio = mine / theirs if theirs else float("nan")
    return Row(
        scenario, measure, unit, Stat([mine]), peer_name, Stat([theirs]), Stat([ratio]), target
    )


# -- 2. the relay at depth ----------------------------------------------------------------------


class Outbox:
    """Pending outbox rows for one queue, committed with COPY, then the relay woken."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue
        self.prefix = random.getrandbits(63)
        self.written = 0

    def add(self, count: int, *, settled: bool = False) -> None:
        """``settled``: load while the queue is disabled (the relay leaves it alone), then
        ``VACUUM ANALYZE``, then enable it: a backlog as autovacuum would have seen it."""
        from django.db import connection

        from queues.models import OutboxMessage, Queue
        from queues.outbox import NOTIFY_CHANNEL

        stop = self.written + count
        if settled:
            Queue.objects.filter(pk=self.queue.pk).update(enabled=False)
        copy_rows(
            OutboxMessage,
            ["message_id", "ordering_key", "body"],
            outbox_rows(self.prefix, self.written, stop),
            {"queue_id": self.queue.pk, "state": "pending"},
        )
        self.written = stop
        if settled:
            vacuum_analyze(OutboxMessage)
            Queue.objects.filter(pk=self.queue.pk).update(enabled=True)
        with connection.cursor() as cursor:
            cursor.execute(f"NOTIFY {NOTIFY_CHANNEL}")


def wait_until(count: Callable[[], int], target: int, timeout: float) -> float:
    """Poll ``count`` until it reaches ``target``; the perf_counter time it did."""
    deadline = time.perf_counter() + timeout
    while True:
        now = time.perf_counter()
        if count() >= target:
            return now
        if now > deadline:
            raise BenchError(f"scale: the relay published {count()} of {target} in {timeout} s")
        time.sleep(0.002)


def drains(outbox: Outbox, count: Callable[[], int], size: int, times: int) -> list[float]:
    """``times`` fills of ``size`` rows, each drained before the next: msg/s of each."""
    rates = []
    for _ in range(times):
        base = count()
        outbox.add(size)
        began = time.perf_counter()
        rates.append(size / (wait_until(count, base + size, 120) - began))
    return rates


def warm(outbox: Outbox, count: Callable[[], int]) -> None:
    """A few rows through the relay first: it connects to the engine, the topic is known."""
    base = count()
    outbox.add(10)
    wait_until(count, base + 10, 60)


def relay_part(bench: Bench, options: Options, sizes: Sizes, details: dict[str, Any]) -> list[Row]:
    """Drains of ``relay_small`` rows before and after the ``relay_big`` window (A-B-A: a
    shared machine's slow minute does not land on one side only), each side its own queue."""
    from queues.models import OutboxMessage

    engine = "kafka" if "kafka" in options.engines else "database"
    queues = [bench.make_queue(engine, f"scale-{n}") for n in ("small", "big")]
    small_count, big_count = (published_counter(q) for q in queues)
    small_box, big_box = (Outbox(q) for q in queues)
    times = max(1, sizes.relay_window // sizes.relay_small // 2)
    small: list[float] = []  # msg/s of each drain of ``relay_small`` rows
    timings: dict[str, float] = {}
    try:
        with RelayProcess(bench.child_env(), name="scale-relay") as relay:
            warm(small_box, small_count)
            warm(big_box, big_count)
            small += drains(small_box, small_count, sizes.relay_small, times)
            base = big_count()
            loading = time.perf_counter()
            big_box.add(sizes.relay_big, settled=True)
            marks = [time.perf_counter()]
            timings["copy_and_vacuum_big"] = marks[0] - loading
            for step in range(sizes.relay_step, sizes.relay_window + 1, sizes.relay_step):
                marks.append(wait_until(big_count, base + step, 300))
            if relay.process.poll() is not None:
                raise BenchError("scale: the relay died")
        began = time.perf_counter()
        delete_where(OutboxMessage, "queue_id", queues[1].pk)
        vacuum_analyze(OutboxMessage)
        timings["delete_and_vacuum_big"] = time.perf_counter() - began
        with RelayProcess(bench.child_env(), name="scale-relay-2") as relay:
            warm(small_box, small_count)
            small += drains(small_box, small_count, sizes.relay_small, times)
    finally:
        for queue in queues:
            delete_where(OutboxMessage, "queue_id", queue.pk)
    big = [sizes.relay_step / (b - a) for a, b in itertools.pairwise(marks)]
    window_rate = sizes.relay_window / (marks[-1] - marks[0])
    small_rate = len(small) * sizes.relay_small / sum(sizes.relay_small / r for r in small)
    details["relay"] = {
        "engine": engine,
        "small_pending": sizes.relay_small,
        "big_pending": sizes.relay_big,
        "window": sizes.relay_window,
        "step": sizes.relay_step,
        "seconds": {k: round(v, 2) for k, v in timings.items()},
        "small_drain_rates": small,
        "big_step_rates": big,
        "small_rate": small_rate,
        "big_window_rate": window_rate,
    }
    return [
        Row(
            f"{NAME}/relay",
            f"drain rate, {sizes.relay_big:,} pending (first {sizes.relay_window:,})",
            "msg/s",
            Stat([window_rate]),
            f"{sizes.relay_small:,} pending",
            Stat([small_rate]),
            Stat([window_rate / small_rate]),
            RELAY_TARGET,
            note="per-step and per-drain rates in details",
        )
    ]


# -- 3. database-queue claim at depth -----------------------------------------------------------


def claim_part(bench: Bench, sizes: Sizes, details: dict[str, Any]) -> list[Row]:
    import datetime as dt

    from django.utils import timezone

    from queues.backends import get_backend
    from queues.models import DatabaseMessage

    depths = sizes.claim_depths
    queues = {d: bench.make_queue("database", f"scale-claim-{d}") for d in depths}
    claims: dict[int, list[float]] = {d: [] for d in depths}
    pairs: dict[int, list[float]] = {d: [] for d in depths}
    rounds = 6
    try:
        for depth, queue in queues.items():
            copy_rows(
                DatabaseMessage,
                ["message_id", "body"],
                message_rows(random.getrandbits(63), 0, depth + sizes.claims + 10),
                {"queue_id": queue.pk, "available_at": timezone.now() - dt.timedelta(seconds=1)},
            )
        vacuum_analyze(DatabaseMessage)
        backends = {d: get_backend(q) for d, q in queues.items()}
        for backend in backends.values():
            _claims(backend, 10)  # warm-up
        for repeat in range(rounds):  # blocks of claims at each depth, the order rotating
            order = depths[repeat % len(depths) :] + depths[: repeat % len(depths)]
            for depth in order:
                one, two = _claims(backends[depth], sizes.claims // rounds)
                claims[depth] += one
                pairs[depth] += two
        for backend in backends.values():
            backend.close()
    finally:
        for queue in queues.values():
            delete_where(DatabaseMessage, "queue_id", queue.pk)
    found = {
        depth: {
            "claim_p50": percentile(claims[depth], 50),
            "claim_p99": percentile(claims[depth], 99),
            "p50": percentile(pairs[depth], 50),
            "p99": percentile(pairs[depth], 99),
            "samples": len(pairs[depth]),
        }
        for depth in depths
    }
    details["claim"] = {"depths": {str(k): v for k, v in found.items()}, "claims": sizes.claims}
    low, high = sizes.claim_depths[0], sizes.claim_depths[-1]
    return [
        _row(
            f"{NAME}/claim",
            f"database queue fetch(1)+ack at depth {high:,}: {pct}",
            found[high][pct],
            f"depth {low:,}",
            found[low][pct],
        )
        for pct in ("p50", "p99")
    ]


def _claims(backend: Any, count: int) -> tuple[list[float], list[float]]:
    """``count`` single claims, each acknowledged: (claim ms, claim + ack ms)."""
    claims: list[float] = []
    pairs: list[float] = []
    for _ in range(count):
        began = time.perf_counter()
        deliveries = backend.fetch(1, wait_seconds=0)
        claimed = time.perf_counter()
        if len(deliveries) != 1:
            raise BenchError(f"scale: a claim returned {len(deliveries)} messages")
        backend.ack(deliveries[0])
        done = time.perf_counter()
        claims.append((claimed - began) * 1000)
        pairs.append((done - began) * 1000)
    return claims, pairs
