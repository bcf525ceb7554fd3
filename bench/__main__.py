"""``python -m bench [--quick] [--scenario NAME ...] [--engine ENGINE ...]``

Sets up a fresh PostgreSQL database (``quaymaster_bench``, migrated by ``manage.py migrate``
in a subprocess), a user, an API token and its own queues on the real engines, runs the
scenarios, prints one table (scenario, our figure, the peer's figure, ratio, target) and
writes the same with the machine's description to ``bench/results/latest.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

from bench.harness import RESULTS, Row, machine, table, write_results
from bench.options import ENGINES, BenchError, Options
from bench.scenarios import SCENARIOS, load
from bench.setup import Bench


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[1])
    parser.add_argument(
        "--quick", action="store_true", help="seconds per scenario: a smoke test, not figures"
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=list(SCENARIOS),
        help="run only this scenario (repeatable); default: all",
    )
    parser.add_argument(
        "--engine",
        action="append",
        choices=list(ENGINES),
        help="only this engine where a scenario runs per engine (repeatable); default: all",
    )
    parser.add_argument("--repeats", type=int, help="override every scenario's repeat count")
    parser.add_argument(
        "--seconds", type=float, help="override the length of each timed measurement"
    )
    parser.add_argument(
        "--database",
        default="quaymaster_bench",
        help="name of the bench database, dropped and created anew (default: quaymaster_bench)",
    )
    parser.add_argument(
        "--keep-database", action="store_true", help="leave the bench database for inspection"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=RESULTS / "latest.json",
        help="where to write the results (default: bench/results/latest.json)",
    )
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.list:
        for name in SCENARIOS:
            print(f"{name:14} {load(name).TITLE}")
        return 0
    names = args.scenario or list(SCENARIOS)
    options = Options(
        quick=args.quick,
        engines=tuple(args.engine or ENGINES),
        repeats=args.repeats,
        seconds=args.seconds,
    )
    started = time.perf_counter()
    try:
        bench = Bench.open(database=args.database, keep_database=args.keep_database)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    rows: list[Row] = []
    failed: list[str] = []
    timings: dict[str, float] = {}
    info = machine()
    try:
        for name in names:
            module = load(name)
            print(f"== {name}: {module.TITLE}", file=sys.stderr, flush=True)
            began = time.perf_counter()
            try:
                new = module.run(bench, options)
            except Exception:
                traceback.print_exc()
                failed.append(name)
                continue
            finally:
                timings[name] = round(time.perf_counter() - began, 1)
            rows.extend(new)
            print(table(new), file=sys.stderr, flush=True)
    finally:
        bench.close()
    info["engines"].update(bench.engine_versions)
    info["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    info["seconds"] = round(time.perf_counter() - started, 1)
    path = write_results(
        rows,
        info=info,
        options={
            "quick": options.quick,
            "scenarios": names,
            "engines": list(options.engines),
            "repeats": options.repeats,
            "seconds": options.seconds,
            "failed": failed,
            "scenario_seconds": timings,
        },
        details=bench.details,
        path=args.output,
    )
    print()
    print(table(rows))
    print()
    print(
        f"{info['cpus']} cores, {info['memory_mib']:.0f} MiB, Python {info['python']}, "
        f"Django {info['django']}, engines {info['engines']}, {info['date']}, "
        f"load average {info['load_average']} -> {info['load_average_end']}, "
        f"{info['seconds']:.0f} s"
    )
    print(f"written to {path}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
