"""Scenario 6 — resident memory of the web, relay and worker processes, idle and under load.

RSS is ``VmRSS`` from ``/proc/<pid>/status``, summed over the process and its children (for
gunicorn: the master and its 2 workers), sampled every 100 ms; "under load" is the peak.

* web: ``gunicorn quaymaster.wsgi`` vs the bare DRF echo under the same gunicorn, idle after
  boot, then under scenario-1 load (single publishes to a database queue, then batches of 100
  to a Kafka queue; the echo gets the same request bodies).
* relay: ``manage.py relay`` idle vs a bare Django process (``manage.py shell`` asleep: the
  settings and apps loaded, nothing else); under scenario-3 load (draining N rows on each
  engine) vs the bare client loop publishing the same rows in a process of its own
  (``bench.peer_loop``, no Django).
* worker: ``manage.py runworker`` at concurrency 10 on RabbitMQ, idle once it consumes, and
  its peak while draining scenario 4's no-op messages, vs a Celery worker (thread pool,
  concurrency 10) idle and draining the same number of no-op tasks.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.harness import ROOT, Row, paired
from bench.loadgen import run_load
from bench.options import BenchError, Options
from bench.processes import Gunicorn, RelayProcess, RssSampler, tree_rss_mib
from bench.queues import message_body
from bench.scenarios import workers
from bench.scenarios.relay import fill, pending
from bench.setup import Bench

NAME = "memory"
TITLE = "Memory: resident set of web (gunicorn), relay and worker, idle and under load"
CONCURRENCY = 4
SETTLE = 1.0


def _wait_drained(queues: list[Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(pending(q) for q in queues) and time.monotonic() < deadline:
        time.sleep(0.05)


def run(bench: Bench, options: Options) -> list[Row]:
    from queues.models import OutboxMessage

    repeats, seconds = options.size(quick=(1, 1.0), full=(2, 3.0))
    count = 300 if options.quick else 1_500
    engines = [e for e in options.engines]
    db = bench.make_queue("database", "memory") if "database" in engines else None
    kafka = bench.make_queue("kafka", "memory") if "kafka" in engines else None
    single = message_body(0)
    batch = {"messages": [message_body(i) for i in range(100)]}
    rows: list[Row] = []
    details: dict[str, Any] = {"seconds": seconds, "repeats": repeats, "rows": count}

    # -- web ------------------------------------------------------------------------------------
    ours = Gunicorn(bench.child_env(), "memory-web")
    echo = Gunicorn(
        bench.child_env(DJANGO_SETTINGS_MODULE="bench.settings_echo"),
        "memory-echo",
        app="bench.echo_app",
        ready_path="/echo",
    )
    with ours, echo:
        time.sleep(SETTLE)
        idle = (ours.rss_mib(), echo.rss_mib())
        loaded_ours: list[float] = []
        loaded_echo: list[float] = []

        def load(url: str, body: Any, headers: dict[str, str]) -> None:
            run_load(
                url, body, headers=headers, concurrency=CONCURRENCY, duration=seconds, warmup=0
            )

        for _ in range(repeats):
            with RssSampler(ours.pid) as sampler:
                if db is not None:
                    load(ours.url(f"/api/v1/zstorage/queue/{db.pk}/publish"), single, bench.auth)
                if kafka is not None:
                    url = ours.url(f"/api/v1/zstorage/queue/{kafka.pk}/publish/batch")
                    load(url, batch, bench.auth)
            loaded_ours.append(sampler.peak)
            with RssSampler(echo.pid) as sampler:
                load(echo.url("/echo"), single, {})
                load(echo.url("/echo"), batch, {})
            loaded_echo.append(sampler.peak)
        time.sleep(SETTLE)
        after = (ours.rss_mib(), echo.rss_mib())
    rows += [
        paired(NAME, "web idle (master + 2 workers)", "MiB", [idle[0]], "bare DRF echo", [idle[1]]),
        paired(
            NAME, "web under publish load, peak", "MiB", loaded_ours, "bare DRF echo", loaded_echo
        ),
        paired(NAME, "web after load", "MiB", [after[0]], "bare DRF echo", [after[1]]),
    ]
    details["web"] = {"idle": idle, "loaded": [loaded_ours, loaded_echo], "after": after}

    # -- relay ----------------------------------------------------------------------------------
    queues = [bench.make_queue(engine, "memory-relay") for engine in engines]
    bare = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", "import time; time.sleep(3600)"],
        cwd=ROOT,
        env=bench.child_env(),
        stdout=subprocess.DEVNULL,
    )
    try:
        with RelayProcess(bench.child_env()) as relay:
            time.sleep(SETTLE * 2)  # the bare process boots meanwhile
            relay_idle, bare_rss = relay.rss_mib(), tree_rss_mib(bare.pid)
            relay_loaded: list[float] = []
            for _ in range(repeats):
                with RssSampler(relay.pid) as sampler:
                    for queue in queues:
                        fill(queue, count)
                    _wait_drained(queues, timeout=300)
                relay_loaded.append(sampler.peak)
                OutboxMessage.objects.filter(queue__in=queues).delete()
            time.sleep(SETTLE)
            relay_after = relay.rss_mib()
    finally:
        bare.terminate()
        bare.wait(timeout=30)

    peer_loaded: list[float] = []
    specs = [f"{q.type}:{q.name}:{q.pk}" for q in queues]
    for _ in range(repeats):
        loop = subprocess.Popen(
            [sys.executable, "-m", "bench.peer_loop", str(count), *specs],
            cwd=ROOT,
            env=bench.child_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert loop.stdin is not None
        assert loop.stdout is not None
        loop.stdout.readline()  # ready
        with RssSampler(loop.pid) as sampler:
            loop.stdin.write("go\n")
            loop.stdin.flush()
            loop.stdout.readline()  # done
        loop.stdin.close()
        loop.wait(timeout=30)
        peer_loaded.append(sampler.peak)
    rows += [
        paired(NAME, "relay idle", "MiB", [relay_idle], "bare Django process", [bare_rss]),
        paired(
            NAME,
            f"relay draining {count} rows x {len(queues)} engines, peak",
            "MiB",
            relay_loaded,
            "bare client loop process",
            peer_loaded,
        ),
        paired(NAME, "relay after load", "MiB", [relay_after], "bare Django process", [bare_rss]),
    ]
    details["relay"] = {
        "idle": relay_idle,
        "loaded": relay_loaded,
        "after": relay_after,
        "bare_django": bare_rss,
        "peer_loaded": peer_loaded,
    }
    if "rabbitmq" in engines:
        rows += _worker(bench, repeats, 1_000 if options.quick else 15_000, details)
    bench.details[NAME] = details
    return rows


def _worker(bench: Bench, repeats: int, count: int, details: dict[str, Any]) -> list[Row]:
    """One worker process (concurrency 10) on RabbitMQ: idle once it consumes, and its peak
    while it drains ``count`` no-op messages (scenario 4's load); the Celery worker with the
    thread pool under the same load as the peer."""
    queue = bench.make_queue("rabbitmq", "memory-worker", visibility_timeout=30)
    celery_queue = f"bench-{bench.run_id}-memory-celery"
    workers.declare_celery_queue(celery_queue)
    results: dict[str, dict[str, list[float]]] = {"ours": {}, "celery": {}}
    try:
        with contextlib.ExitStack() as stack:
            consumers = {
                "ours": (
                    workers.ours(bench, queue, 10),
                    lambda n: workers.fill_rabbitmq(queue.name, n),
                    workers.rabbitmq_left(queue.name, stack),
                ),
                "celery": (
                    workers.celery(bench, celery_queue, "threads", loglevel="INFO"),
                    lambda n: workers.fill_celery(celery_queue, n),
                    workers.rabbitmq_left(celery_queue, stack),
                ),
            }
            for _ in range(repeats):
                for key, (start, fill, left) in consumers.items():
                    idle, peak = _worker_rss(start(), key, count, fill, left)
                    results[key].setdefault("idle", []).append(idle)
                    results[key].setdefault("peak", []).append(peak)
    finally:
        workers.delete_celery_queue(celery_queue)
    details["worker"] = results
    return [
        paired(
            NAME,
            "worker idle (rabbitmq, c=10)",
            "MiB",
            results["ours"]["idle"],
            "Celery threads c=10",
            results["celery"]["idle"],
        ),
        paired(
            NAME,
            f"worker draining {count} no-op messages, peak",
            "MiB",
            results["ours"]["peak"],
            "Celery threads c=10",
            results["celery"]["peak"],
        ),
    ]


def _worker_rss(
    consumer: workers.ConsumerProcess,
    key: str,
    count: int,
    fill: Callable[[int], None],
    left: Callable[[], int],
) -> tuple[float, float]:
    try:
        consumer.wait_for_output(workers.READY[key])
        time.sleep(SETTLE)  # a window to measure in, not a synchronisation
        idle = tree_rss_mib(consumer.pid)
        with RssSampler(consumer.pid) as sampler:
            fill(count)
            deadline = time.monotonic() + 300
            while left():
                if time.monotonic() > deadline or not consumer.alive():
                    raise BenchError(f"{consumer.label} did not drain; see {consumer.log_path}")
                time.sleep(0.05)
        return idle, sampler.peak
    finally:
        consumer.stop()
