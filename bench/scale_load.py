"""The ``scale`` scenario's tools: bulk loads with COPY, a broker-side count of what the relay
published, where the run writes its files, and the plots.

Loads go through PostgreSQL's ``COPY`` on Django's own connection (psycopg): a million rows in
seconds, where ``create_record`` or the ORM would take many minutes. Every column of the model
that a load does not vary takes one value for the whole load: the one given, else the field's
default (``auto_now``/``auto_now_add`` fields: now), so a column added to a model later does
not break the load as long as it has a default or accepts NULL.
"""

from __future__ import annotations

import json
import math
import os
import sys
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from bench.harness import RESULTS
from bench.options import BenchError


def copy_rows(
    model: Any,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    fixed: dict[str, Any] | None = None,
) -> int:
    """COPY ``rows`` (values for ``columns``, field attnames, ready for the database: JSON as
    text) into ``model``'s table in one transaction; returns the number of rows."""
    from django.db import connection
    from django.db.models import JSONField
    from django.utils import timezone

    fixed = fixed or {}
    now = timezone.now()
    constant: list[tuple[str, Any]] = []
    for f in model._meta.concrete_fields:
        if f.primary_key or f.attname in columns:
            continue
        if f.attname in fixed or f.name in fixed:
            value = fixed.get(f.attname, fixed.get(f.name))
        elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            value = now
        else:
            value = f.get_default()  # "" for text without a default, else None
            if value is None and not f.null:
                raise BenchError(f"scale: no value to COPY into {model.__name__}.{f.name}")
        if isinstance(f, JSONField):
            value = None if value is None else _json(value)
        else:
            value = f.get_db_prep_save(value, connection)
        constant.append((f.column, value))
    names = [model._meta.get_field(c).column for c in columns] + [c for c, _ in constant]
    tail = tuple(v for _, v in constant)
    sql = f"COPY {model._meta.db_table} ({', '.join(names)}) FROM STDIN"
    connection.ensure_connection()
    count = 0
    with connection.connection.cursor() as cursor, cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row((*row, *tail))
            count += 1
    return count


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def vacuum_analyze(model: Any) -> None:
    """``VACUUM ANALYZE`` the model's table, as autovacuum would after a bulk load: statistics
    for the planner, the visibility map for index-only scans, GIN's pending list merged."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")


def delete_where(model: Any, column: str, value: int) -> None:
    """One ``DELETE … WHERE column = value`` (no per-row work in Python for a million rows)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE {column} = %s", [value])


def uuids(prefix: int, start: int, stop: int) -> Iterable[uuid.UUID]:
    """Distinct, cheap ids: ``prefix`` in the high 64 bits, the counter in the low."""
    high = (prefix & (2**64 - 1)) << 64
    return (uuid.UUID(int=high | i) for i in range(start, stop))


# -- what the loads write ---------------------------------------------------------------------

NOTES = "Leave at the back door; the customer works nights."


def total_of(i: int) -> str:
    """100,000 distinct totals, each once per 100,000 records (7919 is prime to 100,000)."""
    cents = (i * 7919) % 100_000
    return f"{cents // 100}.{cents % 100:02d}"


def record_rows(start: int, stop: int) -> Iterable[tuple[str]]:
    """Orders-table records ``start``…``stop - 1``: ``data`` as JSON text."""

    statuses = ("new", "paid", "shipped")
    for i in range(start, stop):
        data = {"number": f"SO-{i:07d}", "total": total_of(i), "status": statuses[i % 3]}
        data["notes"] = NOTES
        yield (_json(data),)


def outbox_rows(prefix: int, start: int, stop: int) -> Iterable[tuple[Any, ...]]:
    """Pending outbox rows as record events make them: (message_id, ordering_key, body)."""

    for i, message_id in zip(range(start, stop), uuids(prefix, start, stop), strict=True):
        body = {
            "handler": "bench",
            "message_id": str(message_id),
            "event": "create",
            "table": "orders",
            "record_id": i,
            "version": 1,
            "data": {"number": f"SO-{i}", "total": "129.90", "status": "new", "notes": NOTES},
            "changed_fields": ["notes", "number", "status", "total"],
            "actor": "bench",
            "time": "2026-11-23T14:02:11.123456+00:00",
        }
        yield message_id, f"orders:{i}", _json(body)


def message_rows(prefix: int, start: int, stop: int) -> Iterable[tuple[Any, ...]]:
    """Database-queue messages of ~200 B: (message_id, body)."""

    for i, message_id in zip(range(start, stop), uuids(prefix, start, stop), strict=True):
        body = {"handler": "bench", "seq": i, "to": "ada@example.com", "pad": "x" * 120}
        yield message_id, _json(body)


# -- what the relay published ------------------------------------------------------------------


def published_counter(queue: Any) -> Callable[[], int]:
    """A function returning how many messages reached ``queue``'s engine so far, read from
    the engine (Kafka: the topic's end offsets; the database queue: its rows), so the count
    does not depend on how the relay marks its outbox rows."""
    if queue.type == "kafka":
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer(
            {
                "bootstrap.servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"],
                "group.id": f"bench-scale-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
            }
        )
        topic = consumer.list_topics(queue.name, timeout=10).topics[queue.name]
        partitions = [TopicPartition(queue.name, p) for p in topic.partitions]

        def kafka() -> int:
            return sum(
                consumer.get_watermark_offsets(tp, timeout=10, cached=False)[1] for tp in partitions
            )

        return kafka
    if queue.type == "database":
        from queues.models import DatabaseMessage

        def database() -> int:
            return DatabaseMessage.objects.filter(queue_id=queue.pk).count()

        return database
    raise BenchError(f"scale: no published count for {queue.type} queues")


# -- where the run writes -----------------------------------------------------------------------


def results_dir() -> Path:
    """The folder of this run's JSON (``python -m bench --output``), for the plots beside it;
    ``bench/results`` when the bench was started some other way."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name == "bench.__main__":
        try:
            return Path(main.parse(sys.argv[1:]).output).parent  # type: ignore[union-attr]
        except (SystemExit, AttributeError):
            pass
    return RESULTS


# -- plots --------------------------------------------------------------------------------------

#: (label, x values, y values, matplotlib format string)
Series = tuple[str, Sequence[float], Sequence[float], str]
#: (panel title, x axis label, its series, logarithmic x axis)
Panel = tuple[str, str, Sequence[Series], bool]


def plot(
    path: Path,
    title: str,
    ylabel: str,
    panels: Sequence[Panel],
    *,
    logy: bool = True,
) -> Path:
    """Line plots, one panel per entry of ``panels`` (two per row), written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    columns = min(2, len(panels))
    lines = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(5.2 * columns, 3.8 * lines + 0.5), dpi=100, layout="constrained")
    figure.suptitle(title)
    grid = figure.subplots(lines, columns, squeeze=False)
    for axes in grid.flat[len(panels) :]:
        axes.set_visible(False)
    for axes, (name, xlabel, series, logx) in zip(grid.flat, panels, strict=False):
        for label, xs, ys, style in series:
            points = [
                (x, y) for x, y in zip(xs, ys, strict=True) if y is not None and math.isfinite(y)
            ]
            if points:
                axes.plot([p[0] for p in points], [p[1] for p in points], style, label=label)
        if logx:
            axes.set_xscale("log")
            ticks = sorted({x for _, xs, _, _ in series for x in xs})
            axes.set_xticks(ticks, [short(x) for x in ticks])
            axes.xaxis.set_minor_formatter(NullFormatter())
        if logy:
            axes.set_yscale("log")
            axes.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            axes.yaxis.set_minor_formatter(NullFormatter())
        else:
            axes.set_ylim(bottom=0)
        axes.set_title(name, fontsize="medium")
        axes.set_xlabel(xlabel)
        axes.set_ylabel(ylabel)
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def short(value: float) -> str:
    """1000 → 1k, 1000000 → 1M."""
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if value >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


def draw(details: dict[str, Any], folder: Path) -> dict[str, str]:
    """The scenario's three plots from its details (so a results file can be drawn again):
    ``scale-records.png``, ``scale-relay.png``, ``scale-claim.png`` in ``folder``."""
    written: dict[str, str] = {}
    records = details.get("records")
    if records:
        xs = records["sizes"]
        panels: list[Panel] = []
        for key, query in records["queries"].items():
            by = records["results"][key]
            panels.append(
                (
                    query["label"],
                    "records in the table",
                    [
                        ("ours p50", xs, [by[str(n)]["p50"] for n in xs], "C0o-"),
                        ("ours p99", xs, [by[str(n)]["p99"] for n in xs], "C0o:"),
                        ("hand SQL p50", xs, [by[str(n)]["peer_p50"] for n in xs], "C1s-"),
                        ("hand SQL p99", xs, [by[str(n)]["peer_p99"] for n in xs], "C1s:"),
                    ],
                    True,
                )
            )
        title = "Record reads: one page of 50 (ours: zstorage.reads, page + total)"
        written["records"] = str(plot(folder / "scale-records.png", title, "latency [ms]", panels))
    relay = details.get("relay")
    if relay:
        small, big, step = relay["small_drain_rates"], relay["big_step_rates"], relay["step"]
        panels = [
            (
                f"first {relay['window']:,} published",
                "pending outbox rows at the start",
                [
                    (
                        "manage.py relay",
                        [relay["small_pending"], relay["big_pending"]],
                        [relay["small_rate"], relay["big_window_rate"]],
                        "C0o-",
                    )
                ],
                True,
            ),
            (
                "along the way",
                "messages published so far",
                [
                    (
                        f"{relay['big_pending']:,} pending, per {step:,}",
                        [step * (i + 1) for i in range(len(big))],
                        big,
                        "C0o-",
                    ),
                    (
                        f"{relay['small_pending']:,} pending, each drain (before and after)",
                        [relay["small_pending"] * (i + 1) for i in range(len(small))],
                        small,
                        "C1s-",
                    ),
                ],
                False,
            ),
        ]
        title = f"Relay drain rate ({relay['engine']})"
        written["relay"] = str(plot(folder / "scale-relay.png", title, "msg/s", panels, logy=False))
    claim = details.get("claim")
    if claim:
        depths = sorted(int(d) for d in claim["depths"])
        by = claim["depths"]
        series: list[Series] = [
            ("claim + ack p50", depths, [by[str(d)]["p50"] for d in depths], "C0o-"),
            ("claim + ack p99", depths, [by[str(d)]["p99"] for d in depths], "C0o:"),
            ("claim alone p50", depths, [by[str(d)]["claim_p50"] for d in depths], "C1s-"),
            ("claim alone p99", depths, [by[str(d)]["claim_p99"] for d in depths], "C1s:"),
        ]
        title = "Database queue: fetch(1) + ack at depth"
        panel = (f"{claim['claims']} claims", "messages ready in the queue", series, True)
        written["claim"] = str(plot(folder / "scale-claim.png", title, "latency [ms]", [panel]))
    return written
