"""``python -m bench --quick --scenario scale --engine database``: the record queries, the relay
at depth (publishing to the database queue) and the claim at depth come out as rows with
numbers, and the three plots are written beside the results. Only PostgreSQL is needed; a
smoke test, nothing about speed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench.test_bench_quick import assert_numbers, run_quick
from tests.services import service_env

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(120)]


def test_a_quick_scale_run_measures_each_curve_and_plots_it(tmp_path: Path):
    service_env("DATABASE_URL")
    run_quick(tmp_path, "scale", "--scenario", "scale", "--engine", "database", timeout=110)
    document = json.loads((tmp_path / "latest.json").read_text())
    rows = document["rows"]
    assert {row["scenario"] for row in rows} == {"scale/records", "scale/relay", "scale/claim"}
    assert_numbers(rows)
    measures = [row["measure"] for row in rows if row["scenario"] == "scale/records"]
    for label in ("=, indexed field", "non-indexed field", "sort by a field", "page of 50"):
        assert sum(label in m for m in measures) == 3, measures  # p50 per size, p99 at the top
    indexed = [row for row in rows if row["target"] == "<20 ms"]
    assert len(indexed) == 1
    assert indexed[0]["verdict"]
    (relay,) = (row for row in rows if row["scenario"] == "scale/relay")
    assert relay["target"] == "≥0.8"
    assert document["details"]["scale"]["relay"]["engine"] == "database"
    for name in ("records", "relay", "claim"):
        png = tmp_path / f"scale-{name}.png"
        assert png.read_bytes().startswith(b"\x89PNG"), name
        assert document["details"]["scale"]["plots"][name] == str(png)
