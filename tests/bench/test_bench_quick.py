"""The bench runs: ``python -m bench --quick`` on one cheap scenario exits 0, prints the table
and writes latest.json with numbers. A smoke test only: it asserts nothing about speed."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.services import service_env

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(180)]


def test_a_quick_bench_run_prints_the_table_and_writes_numbers(tmp_path: Path):
    service_env("DATABASE_URL")
    service_env("KAFKA_BOOTSTRAP_SERVERS")
    results = tmp_path / "latest.json"  # not bench/results/: a developer's figures stay
    database = f"quaymaster_bench_test_{os.getpid()}"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--scenario",
            "outbox-write",
            "--database",
            database,
            "--output",
            str(results),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    header = [line for line in run.stdout.splitlines() if line.startswith("scenario ")]
    assert header, run.stdout
    assert all(column in header[0] for column in ("ours", "peer", "ratio", "target"))

    assert results.exists()
    document = json.loads(results.read_text())
    assert document["machine"]["cpus"] >= 1
    assert document["machine"]["python"]
    assert document["machine"]["django"]
    assert document["machine"]["engines"]["postgresql"]
    rows = document["rows"]
    assert rows
    assert {row["scenario"] for row in rows} == {"outbox-write"}
    for row in rows:
        for side in ("ours", "peer", "ratio"):
            value = row[side]["median"]
            assert isinstance(value, float), row
            assert math.isfinite(value), row
            assert value > 0, row


@pytest.mark.timeout(300)
def test_a_quick_end_to_end_run_measures_both_database_configurations(tmp_path: Path):
    """``--engine database`` runs the embedded default (SQLite file, relay, worker and writers
    in subprocesses) and PostgreSQL + the database queue: only PostgreSQL is needed."""
    service_env("DATABASE_URL")
    results = tmp_path / "latest.json"
    database = f"quaymaster_bench_test_e2e_{os.getpid()}"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--scenario",
            "end-to-end",
            "--engine",
            "database",
            "--database",
            database,
            "--output",
            str(results),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=290,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    rows = json.loads(results.read_text())["rows"]
    assert {row["scenario"] for row in rows} == {
        "end-to-end/sqlite+database",
        "end-to-end/postgresql+database",
    }
    assert len(rows) == 4  # p50 and p99 of each
    for row in rows:
        for side in ("ours", "peer", "ratio"):
            value = row[side]["median"]
            assert isinstance(value, float), row
            assert math.isfinite(value), row
            assert value > 0, row


@pytest.mark.timeout(300)
def test_a_quick_workers_run_measures_ours_the_bare_loop_and_celery(tmp_path: Path):
    service_env("DATABASE_URL")
    service_env("AMQP_URL")
    results = tmp_path / "latest.json"
    database = f"quaymaster_bench_test_workers_{os.getpid()}"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--scenario",
            "workers",
            "--engine",
            "rabbitmq",
            "--database",
            database,
            "--output",
            str(results),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=290,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    rows = json.loads(results.read_text())["rows"]
    assert [row["peer_name"] for row in rows] == [
        "bare consume+ack loop",
        "bare consume+ack loop",
        "Celery prefork c=10",
        "Celery threads c=10",
    ]
    for row in rows:
        for side in ("ours", "peer", "ratio"):
            value = row[side]["median"]
            assert isinstance(value, float), row
            assert math.isfinite(value), row
            assert value > 0, row
