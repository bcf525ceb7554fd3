"""Scenario 1 — the publish API under gunicorn, per engine.

Ours: ``POST /api/v1/zstorage/queue/{id}/publish`` (one message per request) and
``…/publish/batch`` (100 per request), served by ``gunicorn quaymaster.wsgi --config
platform/gunicorn.conf.py --workers 2`` against the bench database, ``concurrency`` clients
in flight from this process.

Peers, measured in the same run, interleaved with ours:
* single: a bare DRF endpoint (``bench/echo_urls.py``) that parses and echoes the same body,
  under the same gunicorn, config and worker count — target: ours ≥ 50% of its request rate;
* batch: the engine's own Python client publishing the same 100-message batches from one
  process with the same delivery guarantee (``bench/clients.py``) — target: ours ≥ 25%.
"""

from __future__ import annotations

import time
from typing import Any

from bench.clients import encode, publisher
from bench.harness import Row, Target, interleave, paired, percentile
from bench.loadgen import LoadResult, post_once, run_load
from bench.options import BenchError, Options
from bench.processes import Gunicorn
from bench.queues import message_body
from bench.setup import Bench

NAME = "publish-api"
TITLE = "Publish API: messages/s and latency, single and batch, per engine"

BATCH = 100
CONCURRENCY = 4  # two requests waiting per gunicorn worker: the workers never idle
SINGLE_TARGET = Target(0.5)
BATCH_TARGET = Target(0.25)


def client_peer(queue: Any, bodies: list[bytes], seconds: float) -> dict[str, Any]:
    """Publish ``bodies`` as one batch again and again for ``seconds``; msg/s and per-batch
    latency."""
    with publisher(queue) as peer:
        peer.publish(bodies)  # connect, learn the topic's leaders: not measured
        latencies: list[float] = []
        started = time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            began = time.perf_counter()
            peer.publish(bodies)
            latencies.append(time.perf_counter() - began)
        elapsed = time.perf_counter() - started
    return {
        "rate": len(latencies) * len(bodies) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "batches": len(latencies),
    }


def _check(url: str, body: Any, headers: dict[str, str]) -> None:
    status, answer = post_once(url, body, headers)
    if status != 201:
        raise BenchError(f"POST {url} answered {status}: {str(answer)[:500]}")


def run(bench: Bench, options: Options) -> list[Row]:
    repeats, seconds = options.size(quick=(1, 1.0), full=(3, 4.0))
    warmup = 0.3 if options.quick else 0.75
    engines = options.engines
    queues = {engine: bench.make_queue(engine, "publish") for engine in engines}
    single = message_body(0)
    batch = {"messages": [message_body(i) for i in range(BATCH)]}
    batch_bytes = [encode(body) for body in batch["messages"]]

    echo_results: list[LoadResult] = []
    single_results: dict[str, list[LoadResult]] = {e: [] for e in engines}
    batch_results: dict[str, list[LoadResult]] = {e: [] for e in engines}
    peer_results: dict[str, list[dict[str, Any]]] = {e: [] for e in engines}

    ours = Gunicorn(bench.child_env(), "publish-web")
    echo = Gunicorn(
        bench.child_env(DJANGO_SETTINGS_MODULE="bench.settings_echo"),
        "echo-web",
        app="bench.echo_app",
        ready_path="/echo",
    )
    with ours, echo:
        echo_url = echo.url("/echo")
        _check(echo_url, single, {})
        for queue in queues.values():
            _check(ours.url(f"/api/v1/zstorage/queue/{queue.pk}/publish"), single, bench.auth)
            _check(ours.url(f"/api/v1/zstorage/queue/{queue.pk}/publish/batch"), batch, bench.auth)

        def load(url: str, body: Any, headers: dict[str, str]) -> LoadResult:
            return run_load(
                url,
                body,
                headers=headers,
                concurrency=CONCURRENCY,
                duration=seconds,
                warmup=warmup,
            )

        def measure_echo(_: int) -> None:
            echo_results.append(load(echo_url, single, {}))

        def measures_for(engine: str) -> list[Any]:
            pk = queues[engine].pk

            def measure_single(_: int) -> None:
                url = ours.url(f"/api/v1/zstorage/queue/{pk}/publish")
                single_results[engine].append(load(url, single, bench.auth))

            def measure_batch(_: int) -> None:
                url = ours.url(f"/api/v1/zstorage/queue/{pk}/publish/batch")
                batch_results[engine].append(load(url, batch, bench.auth))

            def measure_peer(_: int) -> None:
                peer_results[engine].append(client_peer(queues[engine], batch_bytes, seconds))

            return [measure_single, measure_batch, measure_peer]

        interleave(repeats, measure_echo, *[m for engine in engines for m in measures_for(engine)])

    rows: list[Row] = []
    echo_rate = [r.rate for r in echo_results]
    for engine in engines:
        singles, batches, peers = (
            single_results[engine],
            batch_results[engine],
            peer_results[engine],
        )
        errors_single = sum(r.errors for r in singles)
        errors_batch = sum(r.errors for r in batches)
        scenario = f"{NAME}/{engine}"
        rows += [
            paired(
                scenario,
                "single",
                "req/s",
                [r.rate for r in singles],
                "bare DRF echo",
                echo_rate,
                SINGLE_TARGET,
                errors=errors_single,
            ),
            paired(
                scenario,
                "single p50",
                "ms",
                [r.latency_ms(50) for r in singles],
                "bare DRF echo",
                [r.latency_ms(50) for r in echo_results],
            ),
            paired(
                scenario,
                "single p99",
                "ms",
                [r.latency_ms(99) for r in singles],
                "bare DRF echo",
                [r.latency_ms(99) for r in echo_results],
            ),
            paired(
                scenario,
                f"batch of {BATCH}",
                "msg/s",
                [r.rate * BATCH for r in batches],
                f"{engine} client",
                [p["rate"] for p in peers],
                BATCH_TARGET,
                errors=errors_batch,
            ),
            paired(
                scenario,
                "batch p50",
                "ms",
                [r.latency_ms(50) for r in batches],
                f"{engine} client/batch",
                [p["p50_ms"] for p in peers],
            ),
            paired(
                scenario,
                "batch p99",
                "ms",
                [r.latency_ms(99) for r in batches],
                f"{engine} client/batch",
                [p["p99_ms"] for p in peers],
            ),
        ]
    bench.details[NAME] = {
        "concurrency": CONCURRENCY,
        "gunicorn_workers": ours.workers,
        "seconds": seconds,
        "repeats": repeats,
        "message_bytes": len(encode(single)),
        "echo": [r.summary() for r in echo_results],
        "single": {e: [r.summary() for r in single_results[e]] for e in engines},
        "batch": {e: [r.summary() for r in batch_results[e]] for e in engines},
        "client": peer_results,
    }
    return rows
