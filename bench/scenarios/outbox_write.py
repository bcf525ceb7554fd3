"""Scenario 2 — what the transactional outbox adds to a record write.

``POST /api/v1/zstorage/tables/{slug}/records/`` under gunicorn (``--workers 2``), on three
tables with the same fields: one with no link (the peer), one linked to a database queue and
one linked to a Kafka queue (one ``QueueLink`` each, creates only). No relay runs: the
outbox rows stay pending, so only the write path is measured.

The three kinds of request are interleaved request by request in one load (2 clients, one per
gunicorn worker, so a request rarely waits for a worker): each kind sees the same moments of a
shared machine, which a sequential A-then-B comparison cannot promise. Cost of a write = its
median latency (service time); the ratio is linked / unlinked per repeat. Target: a linked
write costs at most 1.15 times an unlinked one.

A second measure compares the unlinked create with the floor under any DRF endpoint that
writes a row: a bare view (``bench/echo_urls.py`` ``insert``) under the same gunicorn, config
and workers, that writes the same body with ``Record.objects.create`` (no token, no
validation, no audit row). Each side gets its own load in turn (the order rotates per
repeat), 2 clients; the ratio is our requests per second over the bare view's. Target: at
least 0.5.
"""

from __future__ import annotations

from typing import Any

from bench.harness import Row, Target, interleave, paired
from bench.loadgen import LoadResult, post_once, run_load, run_mixed
from bench.options import BenchError, Options
from bench.processes import Gunicorn
from bench.setup import Bench

NAME = "outbox-write"
TITLE = "Outbox write overhead: record creates with and without a linked queue"

CONCURRENCY = 2  # one request per gunicorn worker: latency is service time
TARGET = Target(1.15, at_least=False)
BARE_TARGET = Target(0.5)
LINKED = ("database", "kafka")

RECORD = {
    "number": "SO-1042",
    "total": "129.90",
    "status": "new",
    "notes": "Leave at the back door; the customer works nights. " * 2,
}


def run(bench: Bench, options: Options) -> list[Row]:
    from queues.models import OutboxMessage

    repeats, seconds = options.size(quick=(1, 1.5), full=(8, 3.0))
    warmup = 0.3 if options.quick else 0.75
    linked = [e for e in LINKED if e in options.engines] or ["database"]
    tables: dict[str, Any] = {"unlinked": bench.linked_table(f"orders-{bench.run_id}", None)}
    queues = {}
    for engine in linked:
        queues[engine] = bench.make_queue(engine, "outbox")
        tables[engine] = bench.linked_table(f"orders-{engine}-{bench.run_id}", queues[engine])
    names = list(tables)
    results: dict[str, list[LoadResult]] = {name: [] for name in names}

    with Gunicorn(bench.child_env(), "outbox-web") as web:
        urls = {
            name: web.url(f"/api/v1/zstorage/tables/{table.slug}/records/")
            for name, table in tables.items()
        }
        for url in urls.values():
            status, answer = post_once(url, RECORD, bench.auth)
            if status != 201:
                raise BenchError(f"POST {url} answered {status}: {str(answer)[:500]}")
        for repeat in range(repeats):
            order = names[repeat % len(names) :] + names[: repeat % len(names)]
            mixed = run_mixed(
                [(urls[name], RECORD, bench.auth) for name in order],
                concurrency=CONCURRENCY,
                duration=seconds,
                warmup=warmup,
            )
            for name, result in zip(order, mixed, strict=True):
                results[name].append(result)

    bare = _against_bare_insert(bench, tables["unlinked"], repeats, seconds, warmup)
    outbox = {
        engine: OutboxMessage.objects.filter(queue=queue).count()
        for engine, queue in queues.items()
    }
    OutboxMessage.objects.filter(queue__in=list(queues.values())).delete()

    rows = []
    base = results["unlinked"]
    for engine in linked:
        mine = results[engine]
        errors = sum(r.errors for r in mine) + sum(r.errors for r in base)
        rows += [
            paired(
                NAME,
                f"create, linked to {engine} queue: cost (p50)",
                "ms",
                [r.latency_ms(50) for r in mine],
                "no link",
                [r.latency_ms(50) for r in base],
                TARGET,
                errors=errors,
            ),
            paired(
                NAME,
                f"create, linked to {engine} queue: mean",
                "ms",
                [_mean(r) for r in mine],
                "no link",
                [_mean(r) for r in base],
            ),
        ]
    bench.details[NAME] = {
        "concurrency": CONCURRENCY,
        "seconds": seconds,
        "repeats": repeats,
        "interleaved": "request by request, one load per repeat",
        "results": {name: [r.summary() for r in rs] for name, rs in results.items()},
        "outbox_rows_written": outbox,
        "against_bare_insert": {side: [r.summary() for r in rs] for side, rs in bare.items()},
    }
    ours, theirs = bare["ours"], bare["bare"]
    rows.append(
        paired(
            NAME,
            "create through the API, no link: throughput",
            "req/s",
            [r.rate for r in ours],
            "bare DRF view + Record.objects.create",
            [r.rate for r in theirs],
            BARE_TARGET,
            errors=sum(r.errors for r in ours) + sum(r.errors for r in theirs),
        )
    )
    return rows


def _against_bare_insert(
    bench: Bench, table: Any, repeats: int, seconds: float, warmup: float
) -> dict[str, list[LoadResult]]:
    ours = Gunicorn(bench.child_env(), "outbox-web-alone")
    bare = Gunicorn(
        bench.child_env(DJANGO_SETTINGS_MODULE="bench.settings_echo"),
        "outbox-bare-insert",
        app="bench.echo_app",
        ready_path="/echo",
    )
    results: dict[str, list[LoadResult]] = {"ours": [], "bare": []}
    with ours, bare:
        urls = {
            "ours": (ours.url(f"/api/v1/zstorage/tables/{table.slug}/records/"), bench.auth),
            "bare": (bare.url(f"/insert/{table.pk}"), {}),
        }
        for url, headers in urls.values():
            status, answer = post_once(url, RECORD, headers)
            if status != 201:
                raise BenchError(f"POST {url} answered {status}: {str(answer)[:500]}")

        def measure(side: str) -> None:
            url, headers = urls[side]
            results[side].append(
                run_load(
                    url,
                    RECORD,
                    headers=headers,
                    concurrency=CONCURRENCY,
                    duration=seconds,
                    warmup=warmup,
                )
            )

        interleave(repeats, lambda _: measure("ours"), lambda _: measure("bare"))
    return results


def _mean(result: LoadResult) -> float:
    return 1000 * sum(result.latencies) / len(result.latencies) if result.latencies else 0.0
