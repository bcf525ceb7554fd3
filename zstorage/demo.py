"""Demo tables for the embedded default: Customers and Orders (Orders reference Customers),
a few hundred records, written through the same services as everything else."""

from __future__ import annotations

import random
from decimal import Decimal

from django.db import transaction

from zstorage import records, schema
from zstorage.models import RuleKind, Table

CUSTOMERS = 60
ORDERS = 240
FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson"]
CITIES = ["Lisbon", "Porto", "Madrid", "Paris", "Berlin", "Dublin"]


@transaction.atomic
def install_demo_tables(seed: int = 7) -> bool:
    """Create the demo tables once; returns False when they already exist."""
    if Table.objects.filter(slug__in=["customers", "orders"]).exists():
        return False
    rng = random.Random(seed)

    customers = schema.create_table("Customers", "customers", "People who place orders.")
    schema.add_field(customers, name="Name", key="name", type="text", required=True)
    email = schema.add_field(customers, name="Email", key="email", type="email", required=True)
    schema.add_field(customers, name="City", key="city", type="choice", options={"choices": CITIES})
    schema.add_field(customers, name="VIP", key="vip", type="boolean", default=False)
    schema.add_rule(customers, RuleKind.UNIQUE, "This email already has an account.", field=email)

    orders = schema.create_table("Orders", "orders", "Orders placed by customers.")
    number = schema.add_field(orders, name="Number", key="number", type="text", required=True)
    schema.add_field(
        orders, name="Customer", key="customer", type="reference", options={"table": "customers"},
        required=True,
    )  # fmt: skip
    total = schema.add_field(
        orders, name="Total", key="total", type="decimal", options={"places": 2}
    )
    schema.add_field(
        orders, name="Status", key="status", type="choice", default="new",
        options={"choices": ["new", "paid", "shipped", "cancelled"]},
    )  # fmt: skip
    schema.add_field(orders, name="Ordered on", key="ordered_on", type="date", required=True)
    schema.add_field(orders, name="Shipped on", key="shipped_on", type="date")
    schema.add_field(orders, name="Notes", key="notes", type="long_text")
    schema.add_rule(orders, RuleKind.UNIQUE, "This order number is taken.", field=number)
    schema.add_rule(
        orders, RuleKind.MIN, "A total cannot be negative.", field=total, params={"value": 0}
    )
    schema.add_rule(
        orders, RuleKind.EXPRESSION, "An order ships after it is placed.",
        params={"expression": "shipped_on >= ordered_on", "field": "shipped_on"},
    )  # fmt: skip

    people = records.bulk_create(
        customers,
        [
            {
                "name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                "email": f"customer{i}@example.com",
                "city": rng.choice(CITIES),
                "vip": rng.random() < 0.15,
            }
            for i in range(CUSTOMERS)
        ],
    )
    rows = []
    for i in range(ORDERS):
        day = 1 + rng.randrange(28)
        status = rng.choice(["new", "paid", "shipped", "shipped", "cancelled"])
        row = {
            "number": f"SO-{1000 + i}",
            "customer": rng.choice(people).pk,
            "total": str(Decimal(rng.randrange(500, 50000)) / 100),
            "status": status,
            "ordered_on": f"2026-10-{day:02d}",
        }
        if status == "shipped":
            row["shipped_on"] = f"2026-11-{min(28, day + rng.randrange(3)):02d}"
        rows.append(row)
    records.bulk_create(orders, rows)
    return True
