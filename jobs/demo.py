"""Demo jobs for the embedded default (``make run`` loads this module through
``QUAYMASTER_JOB_MODULES``), over the demo Customers and Orders tables, and the demo ``jobs``
queue their runs go to.

- ``demo.apply_discount``: one instance per order (``{"order": 12, "percent": 10}``) lowers
  its total through ``ctx.records``, so each change also travels to the ``order-events`` queue.
- ``demo.city_report``: one instance per city (``{"city": "Lisbon"}``) writes a CSV of that
  city's orders with ``ctx.files`` and returns where it is, with the count and the revenue;
  the demo schedule runs it for every city at the top of each hour.
"""

from __future__ import annotations

import csv
import io
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.db import transaction

from jobs.context import JobContext
from jobs.models import CatchUp, Schedule, ScheduleAction, ScheduleKind
from jobs.registry import job
from queues.models import Queue, QueueType

CENT = Decimal("0.01")


@job("demo.apply_discount")
def apply_discount(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Lower one order's total by a percentage.

    Parameters: ``{"order": <Orders record id>, "percent": 10}``. The write goes through
    ZStorage like any other (validated, audited, published to the order's links)."""
    percent = Decimal(str(params.get("percent", 10)))
    if not Decimal(0) <= percent <= Decimal(100):
        raise ValueError(f"percent must be between 0 and 100, not {percent}")
    order = ctx.records.get("orders", int(params["order"]))
    old = Decimal(str(order.data.get("total") or 0))
    new = (old * (Decimal(100) - percent) / Decimal(100)).quantize(CENT, ROUND_HALF_UP)
    ctx.records.update("orders", order.pk, {"total": str(new)}, expected_version=order.version)
    ctx.progress(1, 1, f"order {order.data.get('number')}: {old} → {new}")
    return {"order": order.pk, "old_total": str(old), "new_total": str(new)}


@job("demo.city_report")
def city_report(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Write a CSV of one city's orders and return where it is.

    Parameters: ``{"city": "Lisbon"}``. The file is saved with Django's default storage
    (``var/media`` on the embedded default)."""
    city = str(params["city"])
    customers = ctx.records.search("customers", {"city": city}, limit=10_000)
    names = {c.pk: c.data.get("name", "") for c in customers}
    query = {"customer": {"$in": list(names)}}
    orders = ctx.records.search("orders", query, limit=100_000) if names else []
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["number", "customer", "status", "total", "ordered_on"])
    revenue = Decimal(0)
    for n, order in enumerate(orders, 1):
        data = order.data
        customer = names.get(data.get("customer"), "")
        writer.writerow(
            [data.get("number"), customer, data.get("status"), data.get("total"),
             data.get("ordered_on")]
        )  # fmt: skip
        revenue += Decimal(str(data.get("total") or 0))
        if n % 50 == 0:
            ctx.progress(n, len(orders))
    url = ctx.files.save(f"reports/orders-{city.lower()}.csv", out.getvalue())
    ctx.progress(len(orders), len(orders), "written")
    return {"city": city, "orders": len(orders), "revenue": str(revenue), "file": url}


DEMO_SCHEDULE = "hourly city reports"


def install_demo_schedule() -> bool:
    """One demo schedule: the city reports every hour (a run of one instance per city)."""
    from jobs.schedules import save
    from zstorage.demo import CITIES

    if Schedule.objects.filter(name=DEMO_SCHEDULE).exists():
        return False
    save(
        Schedule(
            name=DEMO_SCHEDULE,
            description="Writes a CSV of each city's orders at the top of every hour.",
            action=ScheduleAction.START_JOB,
            job="demo.city_report",
            params=[{"city": city} for city in CITIES],
            parallelism=2,
            kind=ScheduleKind.CRON,
            cron="0 * * * *",
            catch_up=CatchUp.SKIP,
        )
    )
    return True


@transaction.atomic
def install_demo_jobs_queue() -> bool:
    """Create the database queue runs go to by default, once; False when it exists."""
    name = settings.QUAYMASTER_JOB_QUEUE
    if Queue.objects.filter(name=name).exists():
        return False
    queue = Queue(name=name, type=QueueType.DATABASE, visibility_timeout=60, max_attempts=3)
    queue.full_clean()
    queue.save()
    return True
