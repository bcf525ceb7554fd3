"""The bench runs: ``python -m bench --quick`` on one cheap scenario exits 0, prints the table
and writes latest.json with numbers. A smoke test only: it asserts nothing about speed."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.services import service_env

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(180)]


def run_quick(
    tmp_path: Path, name: str, *args: str, timeout: float
) -> subprocess.CompletedProcess[str]:
    """``python -m bench --quick ARGS`` into its own database and ``tmp_path/latest.json`` (a
    developer's figures in bench/results stay); fails with the output unless it exits 0."""
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            *args,
            "--database",
            f"quaymaster_bench_test_{name}_{os.getpid()}",
            "--output",
            str(tmp_path / "latest.json"),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    return run


def assert_numbers(rows: list[dict[str, Any]]) -> None:
    """Every row has a positive, finite median for ours, the peer and the ratio."""
    assert rows
    for row in rows:
        for side in ("ours", "peer", "ratio"):
            value = row[side]["median"]
            assert isinstance(value, float), row
            assert math.isfinite(value), row
            assert value > 0, row


def test_a_quick_bench_run_prints_the_table_and_writes_numbers(tmp_path: Path):
    service_env("DATABASE_URL")
    service_env("KAFKA_BOOTSTRAP_SERVERS")
    results = tmp_path / "latest.json"
    run = run_quick(tmp_path, "outbox", "--scenario", "outbox-write", timeout=170)
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
    assert {row["scenario"] for row in rows} == {"outbox-write"}
    assert_numbers(rows)


@pytest.mark.timeout(300)
def test_a_quick_end_to_end_run_measures_both_database_configurations(tmp_path: Path):
    """``--engine database`` runs the embedded default (SQLite file, relay, worker and writers
    in subprocesses) and PostgreSQL + the database queue: only PostgreSQL is needed. The same
    run (one set-up) measures a relay's takeover after SIGKILL beside the lease expiry."""
    service_env("DATABASE_URL")
    results = tmp_path / "latest.json"
    run_quick(
        tmp_path,
        "e2e",
        *("--scenario", "end-to-end", "--scenario", "failover", "--engine", "database"),
        timeout=290,
    )
    rows = json.loads(results.read_text())["rows"]
    end_to_end = [row for row in rows if row["scenario"].startswith("end-to-end/")]
    assert {row["scenario"] for row in end_to_end} == {
        "end-to-end/sqlite+database",
        "end-to-end/postgresql+database",
    }
    assert len(end_to_end) == 4  # p50 and p99 of each
    failover = [(row["scenario"], row["peer_name"]) for row in rows if row not in end_to_end]
    assert failover == [("failover/database", "lease expiry (2 s)")]
    assert_numbers(rows)


@pytest.mark.timeout(300)
def test_a_quick_workers_run_measures_ours_the_bare_loop_and_celery(tmp_path: Path):
    service_env("DATABASE_URL")
    service_env("AMQP_URL")
    results = tmp_path / "latest.json"
    run_quick(tmp_path, "workers", "--scenario", "workers", "--engine", "rabbitmq", timeout=290)
    rows = json.loads(results.read_text())["rows"]
    assert [row["peer_name"] for row in rows] == [
        "bare consume+ack loop",
        "bare consume+ack loop",
        "Celery prefork c=10",
        "Celery threads c=10",
        "one create_record per message",
    ]
    assert_numbers(rows)


@pytest.mark.timeout(420)
def test_a_quick_jobs_run_measures_fan_out_start_cost_and_completion_latency(tmp_path: Path):
    """Fan-out on RabbitMQ and the database queue beside a Celery chord (results on
    PostgreSQL), the start cost beside bulk_create and COPY, and the completion latency."""
    service_env("DATABASE_URL")
    service_env("AMQP_URL")
    results = tmp_path / "latest.json"
    run_quick(
        tmp_path,
        "jobs",
        "--scenario",
        "jobs",
        "--engine",
        "rabbitmq",
        "--engine",
        "database",
        timeout=410,
    )
    rows = json.loads(results.read_text())["rows"]
    assert [(row["scenario"], row["peer_name"]) for row in rows] == [
        ("jobs", "Celery chord (prefork c=10, db backend)"),
        ("jobs", "Celery chord (prefork c=10, db backend)"),
        ("jobs", "bare bulk_create"),
        ("jobs", "COPY"),
        ("jobs/postgresql+rabbitmq", "Celery chord: last task → callback"),
        ("jobs/postgresql+rabbitmq", "Celery chord: last task → callback"),
    ]
    assert all(row["errors"] == 0 for row in rows)
    assert_numbers(rows)


def test_a_quick_record_write_run_measures_each_write_beside_a_bare_orm_write(tmp_path: Path):
    """Creates (unlinked, linked), an update and a bulk create beside their bare ORM peers,
    and the round trips of one linked create."""
    service_env("DATABASE_URL")
    results = tmp_path / "latest.json"
    run_quick(tmp_path, "records", "--scenario", "record-write", timeout=170)
    rows = json.loads(results.read_text())["rows"]
    *paired_rows, trips = rows
    assert [row["peer_name"] for row in paired_rows] == [
        "bare Record.objects.create",
        "bare record + outbox row, one transaction",
        "bare queryset update",
        "bare bulk_create",
    ]
    assert_numbers(paired_rows)
    assert trips["measure"].startswith("round trips of one linked create")
    assert 2 <= trips["ours"]["median"] <= 12
