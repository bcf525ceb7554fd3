"""Scale-out: 2 web, 2 relays and 4 worker processes on one queue per engine, a relay and a
worker killed and restarted under load — every event handled, per-record order kept on Kafka.

The run is ``tests.e2e.scale_out`` (see its docstring). This test runs its short version (a
few hundred writes over about 25 s); ``make scale-out`` runs it longer and harder through the
``SCALE_OUT_*`` variables (``SCALE_OUT_SECONDS``, ``SCALE_OUT_RATE``, …), with the same
assertions. The report is printed as JSON (``-s`` shows it) and written beside the logs of
the processes under ``var/scale-out/`` (the last run's only).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.e2e.scale_out import ROOT, Plan, scale_out_run
from tests.services import service_env
from tests.workers.test_processes import child_database_url

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

FOLDER = ROOT / "var" / "scale-out"


@pytest.fixture
def folder() -> Path:
    shutil.rmtree(FOLDER, ignore_errors=True)
    return FOLDER


@pytest.mark.timeout(240)
def test_a_relay_and_a_worker_killed_under_load_lose_nothing_and_keep_kafka_order(
    transactional_db: None, folder: Path
) -> None:
    for variable in ("KAFKA_BOOTSTRAP_SERVERS", "AMQP_URL", "SQS_ENDPOINT_URL"):
        service_env(variable)
    plan = Plan.from_env()

    with scale_out_run(plan, child_database_url(), folder) as report:
        text = json.dumps(report, indent=2, default=str)
        (folder / "report.json").write_text(text + "\n")
        print(text)

    assert not report["unexpected_exits"], report["unexpected_exits"]
    writes = report["writes"]
    assert writes["error_count"] == 0, writes["errors"]
    assert report["drain_complete"], "some events were never handled (see queues.*.missing)"
    for engine, queue in report["queues"].items():
        assert queue["missing_count"] == 0, (engine, queue["missing"])
        assert queue["unexpected"] == [], (engine, queue["unexpected"])
        assert queue["events"] == writes["ok"], engine
        assert queue["ids_per_event"] == 1, f"{engine}: an event published under two ids"
        assert len(queue["per_process"]) >= 2, f"{engine}: one process did all the work"
    kafka = report["queues"]["kafka"]
    assert kafka["handled_order_violations"] == {}, "Kafka handled a record's versions out of order"
    assert report["kafka_log_order"]["violations"] == {}, "the relays broke a record's order"
    assert report["kafka_log_order"]["records_on_two_partitions"] == []
    assert all(count >= plan.workers for count in report["live_workers"].values()), report[
        "live_workers"
    ]
