"""The demo jobs of ``make run`` work on the demo tables, run by the platform's own relay and
worker: a discount lowers each order's total (through ZStorage, so its change is published
too), and a city report writes a CSV file and returns where it is."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage

import jobs.demo  # noqa: F401  (registers the demo jobs, as QUAYMASTER_JOB_MODULES does)
from jobs import runs
from jobs.results import results
from jobs.states import RunState
from queues.models import Queue
from tests.jobs.conftest import wait_until_ended
from zstorage.demo import install_demo_tables
from zstorage.models import Record, Table

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_discount_job_lowers_each_orders_total(platform: Callable[..., None], job_queue: Queue):
    install_demo_tables()
    orders = list(Record.objects.filter(table=Table.objects.get(slug="orders")).order_by("pk")[:3])
    before = {o.pk: Decimal(str(o.data["total"])) for o in orders}
    platform(job_queue)

    params = [{"order": o.pk, "percent": 10} for o in orders]
    run = wait_until_ended(runs.start("demo.apply_discount", params, queue="jobs"))

    assert run.state == RunState.COMPLETED
    for order in orders:
        order.refresh_from_db()
        expected = (before[order.pk] * Decimal("0.9")).quantize(Decimal("0.01"), ROUND_HALF_UP)
        assert Decimal(str(order.data["total"])) == expected
        assert order.version == 2
    assert {r["result"]["order"] for r in results(run)["succeeded"]} == set(before)


def test_the_city_report_writes_a_csv_of_the_citys_orders(
    platform: Callable[..., None], job_queue: Queue, settings: Any, tmp_path: Path
):
    settings.MEDIA_ROOT = str(tmp_path)
    install_demo_tables()
    platform(job_queue)

    run = wait_until_ended(runs.start("demo.city_report", [{"city": "Lisbon"}], queue="jobs"))

    assert run.state == RunState.COMPLETED, results(run)
    [done] = results(run)["succeeded"]
    report = done["result"]
    assert report["city"] == "Lisbon"
    with default_storage.open("reports/orders-lisbon.csv") as handle:
        rows = list(csv.DictReader(io.StringIO(handle.read().decode())))
    assert len(rows) == report["orders"] > 0
    assert sum(Decimal(r["total"] or 0) for r in rows) == Decimal(report["revenue"])
