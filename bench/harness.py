"""Repeats, medians, min-max, percentiles, the result table and ``latest.json``.

Every figure the bench reports is a pair measured in the same run — ours and a peer's — so
that the ratio, not the absolute number, carries the meaning on a shared, noisy machine. Each
pair is measured ``repeats`` times, interleaved, and reported as the median with min-max; the
ratio is taken per repeat (ours / peer), then summarised the same way.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import re
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


# -- statistics ---------------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * pct / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class Stat:
    """Repeated measurements of one figure."""

    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else math.nan

    @property
    def low(self) -> float:
        return min(self.values) if self.values else math.nan

    @property
    def high(self) -> float:
        return max(self.values) if self.values else math.nan

    def as_dict(self) -> dict[str, Any]:
        return {
            "median": _clean(self.median),
            "min": _clean(self.low),
            "max": _clean(self.high),
            "values": [_clean(v) for v in self.values],
        }


def _clean(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 6)


def number(value: float) -> str:
    """Three significant digits, no exponent for the sizes we print."""
    if value is None or math.isnan(value):
        return "n/a"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def spread(stat: Stat) -> str:
    if len(stat.values) <= 1:
        return number(stat.median)
    return f"{number(stat.median)} ({number(stat.low)}\u2013{number(stat.high)})"


# -- targets and rows ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """``ratio >= value`` (``at_least``) or ``ratio <= value``."""

    value: float
    at_least: bool = True

    def __str__(self) -> str:
        return f"{'≥' if self.at_least else '≤'}{self.value:g}"

    def hit(self, ratio: float) -> bool:
        return ratio >= self.value if self.at_least else ratio <= self.value

    def verdict(self, ratio: float) -> str:
        """``hit`` or ``MISS``, with how far from the target the median ratio is."""
        if math.isnan(ratio):
            return "n/a"
        margin = (
            ratio / self.value if self.at_least else (self.value / ratio if ratio else math.inf)
        )
        if self.hit(ratio):
            return f"hit (+{(margin - 1) * 100:.0f}%)"
        return f"MISS ({(1 - margin) * 100:.0f}% short)"


@dataclass(frozen=True)
class Limit(Target):
    """An absolute target on our own figure, not on the ratio: ``ours < value`` (in ``unit``).
    For the few targets an issue states in absolute terms (a latency budget)."""

    at_least: bool = False
    unit: str = ""

    def __str__(self) -> str:
        return f"<{self.value:g} {self.unit}".rstrip()

    def hit(self, figure: float) -> bool:
        return figure < self.value


@dataclass
class Row:
    scenario: str
    measure: str
    unit: str
    ours: Stat
    peer_name: str
    peer: Stat
    ratios: Stat
    target: Target | None = None
    note: str = ""
    errors: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        if self.errors:
            return f"INVALID ({self.errors} errors)"
        if self.target is None:
            return ""
        judged = self.ours if isinstance(self.target, Limit) else self.ratios
        return self.target.verdict(judged.median)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "measure": self.measure,
            "unit": self.unit,
            "ours": self.ours.as_dict(),
            "peer_name": self.peer_name,
            "peer": self.peer.as_dict(),
            "ratio": self.ratios.as_dict(),
            "target": str(self.target) if self.target else None,
            "verdict": self.verdict or None,
            "errors": self.errors,
            "note": self.note or None,
            **({"extra": self.extra} if self.extra else {}),
        }


def paired(
    scenario: str,
    measure: str,
    unit: str,
    ours: Iterable[float],
    peer_name: str,
    peer: Iterable[float],
    target: Target | None = None,
    **kwargs: Any,
) -> Row:
    """A row whose ratio is taken per repeat (the i-th ours over the i-th peer)."""
    mine, theirs = list(ours), list(peer)
    ratios = [a / b if b else math.nan for a, b in zip(mine, theirs, strict=False)]
    return Row(
        scenario, measure, unit, Stat(mine), peer_name, Stat(theirs), Stat(ratios), target, **kwargs
    )


# -- repeats ------------------------------------------------------------------------------------


def interleave(repeats: int, *measures: Callable[[int], None]) -> None:
    """Run each measure ``repeats`` times, rotating the order every repeat, so a slow phase of
    the machine (another engineer's test run) does not land on one side of a ratio only."""
    for repeat in range(repeats):
        shift = repeat % len(measures)
        for measure in [*measures[shift:], *measures[:shift]]:
            measure(repeat)


# -- the table ----------------------------------------------------------------------------------

COLUMNS = ("scenario", "measure", "ours", "peer", "ratio", "target")


def table(rows: Sequence[Row]) -> str:
    cells = [list(COLUMNS)]
    for row in rows:
        ratio = spread(row.ratios) + "\u00d7" if row.ratios.values else ""
        target = f"{row.target} {row.verdict}" if row.target else row.verdict
        cells.append(
            [
                row.scenario,
                f"{row.measure} [{row.unit}]",
                spread(row.ours),
                f"{row.peer_name}: {spread(row.peer)}",
                ratio,
                target,
            ]
        )
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    out = []
    for index, line in enumerate(cells):
        out.append(" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())
        if index == 0:
            out.append("-+-".join("-" * w for w in widths))
    return "\n".join(out)


# -- the machine --------------------------------------------------------------------------------


def _meminfo_mib(key: str) -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(key + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _java_service_versions() -> dict[str, str]:
    """Kafka and ElasticMQ versions, read from the running JVMs' class paths (the
    platform/services scripts unpack them into version-named folders)."""
    found: dict[str, str] = {}
    pattern = re.compile(r"/(kafka|elasticmq)-(\d+(?:\.\d+)+)/")
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "java" not in text:
            continue
        for name, version in pattern.findall(text):
            found.setdefault(name, version)
    return found


def machine(engine_versions: dict[str, str] | None = None) -> dict[str, Any]:
    import django

    info: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_mib": _meminfo_mib("MemTotal"),
        "memory_available_mib": _meminfo_mib("MemAvailable"),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "kernel": platform.release(),
        "python": platform.python_version(),
        "django": django.get_version(),
    }
    versions: dict[str, str] = {}
    for module, attribute in (
        ("rest_framework", "VERSION"),
        ("gunicorn", "__version__"),
        ("psycopg", "__version__"),
        ("kombu", "__version__"),
        ("amqp", "__version__"),
        ("boto3", "__version__"),
    ):
        try:
            versions[module] = str(getattr(__import__(module), attribute))
        except Exception:  # a client that is not installed is simply not listed
            continue
    try:
        import confluent_kafka

        version, library = confluent_kafka.version(), confluent_kafka.libversion()
        versions["confluent_kafka"] = str(version[0] if isinstance(version, tuple) else version)
        versions["librdkafka"] = str(library[0] if isinstance(library, tuple) else library)
    except Exception:
        pass
    info["clients"] = versions
    info["code"] = _git()
    engines = {f"{k}": v for k, v in _java_service_versions().items()}
    engines.update(engine_versions or {})
    info["engines"] = engines
    return info


def _git() -> dict[str, Any]:
    """The commit measured, and whether the working tree differed from it (others may be
    editing the code the bench runs)."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout

    try:
        changed = [line[3:] for line in git("status", "--porcelain").splitlines()]
        return {
            "commit": git("rev-parse", "HEAD").strip(),
            "modified": sorted(p for p in changed if not p.startswith(("bench/", "tests/bench/"))),
        }
    except (OSError, subprocess.SubprocessError):
        return {}


def write_results(
    rows: Sequence[Row],
    *,
    info: dict[str, Any],
    options: dict[str, Any],
    details: dict[str, Any],
    path: Path | None = None,
) -> Path:
    path = path or RESULTS / "latest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "machine": info,
        "options": options,
        "table": table(rows),
        "rows": [row.as_dict() for row in rows],
        "details": details,
    }
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(document, indent=2, default=str) + "\n")
    temporary.replace(path)
    return path


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started
