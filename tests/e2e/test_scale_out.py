"""Scale-out: 2 web, 2 relays and 4 worker processes on one queue per engine, a relay and a
worker killed and restarted under load — every event handled, per-record order kept on Kafka,
and the Prometheus counters of all the processes add up to the events sent.

The run is ``tests.e2e.scale_out`` (see its docstring). This test runs its short version (a
few hundred writes over about 25 s); ``make scale-out`` runs it longer and harder through the
``SCALE_OUT_*`` variables (``SCALE_OUT_SECONDS``, ``SCALE_OUT_RATE``, …), with the same
assertions. The report is printed as JSON (``-s`` shows it) and written as ``report.json``
beside the processes' logs (``make scale-out``: under ``var/scale-out/<date>-<time>/``).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.e2e.scale_out import Plan, scale_out_run
from tests.services import service_env
from tests.workers.test_processes import child_database_url

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

PLAN = Plan.from_env()
#: ``manage.py relay --batch-size``'s default: the most rows a killed relay may have marked
#: without counting them.
RELAY_BATCH = 500


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Where the processes' logs, the handler's lines and the report go: a folder of its own
    under ``SCALE_OUT_DIR`` when that is set (``make scale-out``), else the test's tmp_path."""
    parent = os.environ.get("SCALE_OUT_DIR")
    if not parent:
        return tmp_path
    return Path(parent).resolve() / time.strftime("%Y%m%d-%H%M%S")


@pytest.mark.timeout(round(PLAN.seconds * 2 + PLAN.drain_seconds + 150))
def test_a_relay_and_a_worker_killed_under_load_lose_nothing_and_keep_kafka_order(
    transactional_db: None, folder: Path
) -> None:
    for variable in ("KAFKA_BOOTSTRAP_SERVERS", "AMQP_URL", "SQS_ENDPOINT_URL"):
        service_env(variable)
    plan = PLAN

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
    # The counters, summed over every process (a killed one's from the files it left), add up
    # to the events sent. Each outbox row is marked published once, but the killed relay may
    # have marked its last batch and died before counting it; each event is acknowledged at
    # least once and at most once per handling, but the killed worker's children may have
    # acked one message each (concurrency) and died before counting it.
    metrics = report["metrics"]
    assert metrics["web_writes_answered"] == writes["ok"]
    for engine, counts in metrics["queues"].items():
        handled = report["queues"][engine]["handled"]
        uncounted = writes["ok"] - counts["relay_published"]
        assert 0 <= uncounted <= RELAY_BATCH, (engine, counts)
        assert writes["ok"] - plan.concurrency <= counts["acked"] <= handled, (engine, counts)
        assert counts["fetched"] >= counts["acked"], (engine, counts)
        assert counts["retried"] == counts["dead_lettered"] == 0, (engine, counts)
