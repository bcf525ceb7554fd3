"""``python -m bench.profile TARGET [--engine E] [--seconds S]``: where the time goes.

Targets:
  publish-single   POST …/queue/{id}/publish under gunicorn (cProfile in each worker)
  publish-batch    POST …/queue/{id}/publish/batch (100 messages)
  record-create    POST …/tables/{slug}/records/ (linked to a queue on --engine; ``none``: no link)
  relay            Relay.run_once() in this process until N pending rows are drained

Workers are profiled with cProfile via ``bench/gunicorn_profile.conf.py`` (the project's
config plus two hooks); stats are merged and printed, and kept under ``var/bench/profiles/``.
Uses its own database (``quaymaster_bench_profile``), dropped at the end.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time

from bench.harness import ROOT
from bench.loadgen import run_load
from bench.processes import LOGS, Gunicorn
from bench.queues import message_body
from bench.setup import Bench

PROFILES = LOGS / "profiles"


def report(stats: pstats.Stats, limit: int) -> str:
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("cumulative").print_stats(limit)
    stats.sort_stats("tottime").print_stats(limit)
    return out.getvalue()


def profile_web(bench: Bench, target: str, engine: str, seconds: float, limit: int) -> str:
    folder = PROFILES / f"{target}-{engine}-{int(time.time())}"
    env = bench.child_env(QUAYMASTER_BENCH_PROFILE_DIR=str(folder))
    if target == "record-create":
        queue = None if engine == "none" else bench.make_queue(engine, "profile")
        table = bench.linked_table(f"profile-{bench.run_id}", queue)
        path = f"/api/v1/zstorage/tables/{table.slug}/records/"
        body: object = {"number": "SO-1", "total": "12.50", "status": "new", "notes": "x" * 100}
    else:
        queue = bench.make_queue(engine, "profile")
        suffix = "/batch" if target == "publish-batch" else ""
        path = f"/api/v1/zstorage/queue/{queue.pk}/publish{suffix}"
        body = (
            {"messages": [message_body(i) for i in range(100)]}
            if target == "publish-batch"
            else message_body(0)
        )
    web = Gunicorn(env, f"profile-{target}", config=ROOT / "bench" / "gunicorn_profile.conf.py")
    with web:
        result = run_load(web.url(path), body, headers=bench.auth, concurrency=4, duration=seconds)
    time.sleep(0.5)
    files = sorted(folder.glob("web-*.pstats"))
    if not files:
        return "no profile written (did the workers exit cleanly?)"
    stats = pstats.Stats(*[str(f) for f in files])
    head = f"{target} on {engine}: {result.summary()}\nprofiles: {folder}\n"
    return head + report(stats, limit)


def profile_relay(bench: Bench, engine: str, count: int, limit: int) -> str:
    from bench.scenarios.relay import fill, pending
    from queues.relay import Relay

    queue = bench.make_queue(engine, "profile")
    relay = Relay()
    fill(queue, 10)
    while relay.run_once():
        pass
    fill(queue, count)
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    while pending(queue):
        relay.run_once()
    profiler.disable()
    elapsed = time.perf_counter() - started
    relay.close()
    PROFILES.mkdir(parents=True, exist_ok=True)
    path = PROFILES / f"relay-{engine}-{int(time.time())}.pstats"
    profiler.dump_stats(str(path))
    head = f"relay on {engine}: {count} rows in {elapsed:.2f} s = {count / elapsed:.0f} msg/s\n"
    return head + f"profile: {path}\n" + report(pstats.Stats(str(path)), limit)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument(
        "target", choices=["publish-single", "publish-batch", "record-create", "relay"]
    )
    parser.add_argument("--engine", default="database")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--database", default="quaymaster_bench_profile")
    args = parser.parse_args(argv)
    bench = Bench.open(database=args.database)
    try:
        if args.target == "relay":
            print(profile_relay(bench, args.engine, args.rows, args.limit))
        else:
            print(profile_web(bench, args.target, args.engine, args.seconds, args.limit))
    finally:
        bench.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
