"""Scenario — what message traces cost: each path they touch, and the two they must not slow
down, with ``QUAYMASTER_TRACE_MESSAGES`` on (ours) against off (the peer), in the same run.

Traces are written in two places only: the relay's mark statement (one ``INSERT … SELECT``
more in the same statement, per batch) and the publish API (one bulk insert per request).
A worker writes nothing new (attempts, errors and log lines are the lifecycle log it already
wrote) and a record write writes nothing new (its outbox row already holds the message id),
so on those two the figure shows that nothing moved; the relay and publish rows show the cost.

* workers: ``manage.py runworker Q --concurrency 10`` with the no-op handler, measured as the
  ``workers`` scenario measures it (5% to 95% of a filled queue), on each engine;
* record write: a linked ``create_record`` in this process (``record-write``'s loop);
* relay: ``manage.py relay`` (a process per measure, traces on or off in its environment)
  draining N committed rows per engine, as the ``relay`` scenario drains them;
* publish API: ``queues.api.publishing.publish`` of batches of 100 to a database queue in
  this process (the broker work without HTTP, so the insert's share is not hidden).

Target (the issue's): at most 5% on worker throughput and on the record write (ratios ≥ 0.95
for the rate, ≤ 1.05 for the cost). The relay and publish rows have none: they show what the
capture costs where it is paid.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.harness import Row, Target, interleave, paired
from bench.options import Options
from bench.processes import RelayProcess
from bench.scenarios import record_write, relay, workers
from bench.setup import Bench

NAME = "tracing"
TITLE = "Message traces: workers, record write, relay and publish with traces on and off"

RATE_TARGET = Target(0.95)
COST_TARGET = Target(1.05, at_least=False)
OFF = {"QUAYMASTER_TRACE_MESSAGES": "0"}
ON = {"QUAYMASTER_TRACE_MESSAGES": "1"}
BATCH = 100


def _traces(on: bool) -> None:
    from django.conf import settings

    settings.QUAYMASTER_TRACE_MESSAGES = on


def run(bench: Bench, options: Options) -> list[Row]:
    repeats, _ = options.size(quick=(1, 1.0), full=(3, 5.0))
    rows: list[Row] = []
    details: dict[str, Any] = {"repeats": repeats}
    for engine in options.engines:
        rows.extend(_workers(bench, engine, options.quick, repeats, details))
    rows.append(_record_write(bench, options.quick, repeats, details))
    rows.extend(_relay(bench, options, repeats, details))
    rows.append(_publish(bench, options.quick, repeats, details))
    _traces(True)
    bench.details[NAME] = details
    return rows


def _workers(
    bench: Bench, engine: str, quick: bool, repeats: int, details: dict[str, Any]
) -> list[Row]:
    count = (workers.QUICK_COUNTS if quick else workers.COUNTS)[engine]
    results: dict[str, list[float]] = {"on": [], "off": []}
    with contextlib.ExitStack() as stack:
        measures = []
        for key, env in (("on", ON), ("off", OFF)):
            queue, fill, left = workers._source(bench, engine, f"ours-trace-{key}", stack)
            command = [
                *("manage.py", "runworker", queue.name, "--concurrency", "10"),
                *("--handlers-module", "bench.noop"),
            ]

            def start(
                command: list[str] = command, env: dict[str, str] = env, key: str = key
            ) -> workers.ConsumerProcess:
                return workers.ConsumerProcess(
                    f"trace-{key}-{engine}", [sys.executable, *command], bench.child_env(**env)
                )

            def one(
                _: int,
                key: str = key,
                fill: Any = fill,
                left: Any = left,
                queue: Any = queue,
                start: Any = start,
            ) -> None:
                purge = workers.rabbitmq_purge(queue.name) if engine == "rabbitmq" else None
                results[key].append(
                    workers.drain_rate(
                        f"traces {key} on {engine}", count, fill, left, start, 600.0, purge
                    )
                )

            measures.append(one)
        interleave(repeats, *measures)
    details[f"workers/{engine}"] = {"messages": count, **results}
    return [
        paired(
            f"{NAME}/{engine}",
            "workers, no-op, concurrency 10",
            "msg/s",
            results["on"],
            "traces off",
            results["off"],
            RATE_TARGET,
        )
    ]


def _record_write(bench: Bench, quick: bool, repeats: int, details: dict[str, Any]) -> Row:
    writes = record_write.Writes(bench)
    count = 50 if quick else 400
    create = writes.create(writes.linked)
    results: dict[str, list[float]] = {"on": [], "off": []}

    def measure(key: str) -> Callable[[int], None]:
        def one(_: int) -> None:
            _traces(key == "on")
            results[key].append(record_write.per_write(create, count))

        return one

    create(0)  # warm: the schema cache and the connection
    interleave(repeats, measure("on"), measure("off"))
    details["record_write"] = {"writes": count, **results}
    return paired(
        NAME,
        "record create, linked, in-process",
        "s",
        results["on"],
        "traces off",
        results["off"],
        COST_TARGET,
    )


def _relay(bench: Bench, options: Options, repeats: int, details: dict[str, Any]) -> list[Row]:
    count = 500 if options.quick else 5_000
    rows = []
    for engine in options.engines:
        queue = bench.make_queue(engine, "trace-relay")
        results: dict[str, list[float]] = {"on": [], "off": []}

        def measure(
            key: str, env: dict[str, str], queue: Any = queue, results: Any = results
        ) -> Callable[[int], None]:
            def one(_: int) -> None:
                with RelayProcess(bench.child_env(**env), name=f"relay-trace-{key}"):
                    relay.drain_seconds(queue, 10, timeout=60)  # warm: the backend connects
                    seconds = relay.drain_seconds(queue, count, timeout=300)
                results[key].append(count / seconds)

            return one

        interleave(repeats, measure("on", ON), measure("off", OFF))
        details[f"relay/{engine}"] = {"rows": count, **results}
        rows.append(
            paired(
                f"{NAME}/{engine}",
                f"relay drain {count} rows",
                "msg/s",
                results["on"],
                "traces off",
                results["off"],
            )
        )
    return rows


def _publish(bench: Bench, quick: bool, repeats: int, details: dict[str, Any]) -> Row:
    from queues.api.publishing import publish

    queue = bench.make_queue("database", "trace-publish")
    calls = 20 if quick else 200
    bodies = [{"handler": "log", "n": n, "notes": "x" * 120} for n in range(BATCH)]
    results: dict[str, list[float]] = {"on": [], "off": []}

    def measure(key: str) -> Callable[[int], None]:
        def one(_: int) -> None:
            _traces(key == "on")
            started = time.perf_counter()
            for _call in range(calls):
                publish(queue, bodies)
            results[key].append(calls * BATCH / (time.perf_counter() - started))

        return one

    publish(queue, bodies[:1])  # warm: the backend and the handler check
    interleave(repeats, measure("on"), measure("off"))
    details["publish"] = {"batches": calls, "batch": BATCH, **results}
    return paired(
        NAME,
        f"publish batch of {BATCH}, database queue, in-process",
        "msg/s",
        results["on"],
        "traces off",
        results["off"],
    )
