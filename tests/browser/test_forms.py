"""The admin forms in a real browser: a new table's slug and a new field's key follow the name
until typed by hand; the queue form shows only the chosen engine's inputs and swaps them with
the type; a form with several problems names them all at once. Screenshots of the forms are
saved for the README."""

from __future__ import annotations

import re
from typing import Any

import pytest

from queues.models import Queue
from tests.browser.conftest import log_in, make_user, screenshot
from zstorage import schema
from zstorage.models import Table

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VISIBILITY = re.compile(r"^Visibility timeout \(seconds\)")


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def test_a_new_tables_slug_follows_its_name_until_typed(page: Any):
    make_user("root", admin=True)
    log_in(page, "root")
    page.goto("/tables/new")
    name, slug = page.get_by_label(re.compile(r"^Name")), page.get_by_label(re.compile(r"^Slug"))
    name.press_sequentially("Sales Orders (Café)")
    expect(slug).to_have_value("sales-orders-cafe")
    screenshot(page, "table-new-slug-filled")

    slug.fill("orders")  # typed by hand: the name no longer moves it
    name.fill("Customer orders")
    expect(slug).to_have_value("orders")
    page.get_by_role("button", name="Create table").click()
    expect(page.locator(".messages")).to_contain_text("Table Customer orders created.")
    assert Table.objects.get(slug="orders").name == "Customer orders"


def test_a_new_fields_key_follows_its_name_and_an_edit_never_does(page: Any):
    table = schema.create_table(name="Orders", slug="orders")
    schema.add_field(table, name="Code", key="code", type="text")
    make_user("root", admin=True)
    log_in(page, "root")
    page.goto("/tables/orders/fields/")
    form = page.locator("#add-field")
    name, key = form.get_by_label(re.compile(r"^Name")), form.get_by_label(re.compile(r"^Key"))
    name.press_sequentially("Shipped on")
    expect(key).to_have_value("shipped_on")
    form.get_by_role("button", name="Add field").click()
    expect(page.locator(".messages")).to_contain_text("Field Shipped on added.")
    assert table.fields.filter(key="shipped_on").exists()

    page.goto("/tables/orders/fields/code/edit")  # renaming a field keeps its key
    page.get_by_label(re.compile(r"^Name")).fill("Order code")
    expect(page.get_by_label(re.compile(r"^Key"))).to_have_value("code")


def test_the_queue_form_shows_only_the_chosen_engines_inputs(page: Any):
    make_user("root", admin=True)
    log_in(page, "root")
    page.goto("/queues/new")
    form = page.locator("form.card")
    others = [
        "URL",
        "Region",
        "Username",
        "Password or secret key",
        "Partitions",
        "FIFO (SQS only)",
    ]
    for label in others:
        expect(form.get_by_label(label, exact=True)).to_be_hidden()
    expect(form.get_by_label(VISIBILITY)).to_be_visible()
    screenshot(page, "queue-new-database")

    form.get_by_label("Type").select_option("sqs")
    for label in ["URL", "Region", "Username", "FIFO (SQS only)"]:
        expect(form.get_by_label(label, exact=True)).to_be_visible()
    expect(form.get_by_label(VISIBILITY)).to_be_visible()
    expect(form.get_by_label("Partitions")).to_be_hidden()
    screenshot(page, "queue-new-sqs")

    form.get_by_label("Type").select_option("kafka")
    expect(form.get_by_label("Partitions")).to_be_visible()
    expect(form.get_by_label("Region")).to_be_hidden()
    expect(form.get_by_label(VISIBILITY)).to_be_hidden()
    form.get_by_label(re.compile(r"^Name")).fill("events")
    form.get_by_label("Partitions").fill("6")
    form.get_by_role("button", name="Create queue").click()
    expect(page.locator(".messages")).to_contain_text("Queue events created.")
    events = Queue.objects.get(name="events")
    assert (events.type, events.partitions) == ("kafka", 6)
    # Its settings page shows the Kafka inputs alone too.
    settings = page.locator("#queue-settings")
    expect(settings.get_by_label("Partitions")).to_have_value("6")
    expect(settings.get_by_label("Region")).to_be_hidden()


def test_the_rule_form_names_every_problem_at_once(page: Any):
    table = schema.create_table(name="Orders", slug="orders")
    schema.add_field(table, name="Code", key="code", type="text")
    make_user("root", admin=True)
    log_in(page, "root")
    page.goto("/tables/orders/rules/")
    page.get_by_label("Kind").select_option(label="Minimum length")
    expect(page.get_by_label("Length")).to_be_visible()  # swapped in with the kind
    page.get_by_role("button", name="Add rule").click()
    summary = page.locator("#form-errors")
    expect(summary).to_contain_text("Nothing was saved: 3 things need correcting.")
    expect(summary.locator("li")).to_have_text(
        [
            "Message: Give the message a person sees when the rule fails.",
            "Field: Choose the field this rule checks.",
            "Length: Give the length as a whole number (0 or more).",
        ]
    )
    summary.get_by_role("link", name="Length").click()
    expect(page.get_by_label("Length")).to_be_focused()
    screenshot(page, "rule-form-errors")
