"""The back-office in a real browser: an admin defines a table and works its records; a
business user sees only what is granted. Each main page is saved as a screenshot."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import Group

from tests.browser.conftest import PHONE, log_in, make_user, screenshot
from zstorage import records, schema
from zstorage.models import Record, Table, TableGrant

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def add_field(page: Any, name: str, key: str, type_label: str, **options: str) -> None:
    form = page.locator("#add-field")
    form.get_by_label(re.compile(r"^Name")).fill(name)
    form.get_by_label(re.compile(r"^Key")).fill(key)
    form.get_by_label("Type").select_option(label=type_label)
    if "choices" in options:
        form.get_by_label("Choices").fill(options["choices"])  # swapped in by htmx
    if "places" in options:
        form.get_by_label("Decimal places").fill(options["places"])
    if options.get("required"):
        form.get_by_label("Required", exact=True).check()
    form.get_by_role("button", name="Add field").click()
    expect(page.locator(".messages")).to_contain_text(f"Field {name} added.")


def test_admin_defines_a_table_and_works_its_records(page: Any):
    make_user("root", admin=True)
    log_in(page, "root")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

    # A table, its fields and a rule.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tables").click()
    page.get_by_role("link", name="New table").click()
    page.get_by_label(re.compile(r"^Name")).fill("Orders")
    page.get_by_label(re.compile(r"^Slug")).fill("orders")
    page.get_by_role("button", name="Create table").click()
    expect(page).to_have_url(re.compile(r"/tables/orders/fields/$"))
    add_field(page, "Number", "number", "Text", required="yes")
    add_field(page, "Total", "total", "Decimal", places="2")
    add_field(page, "Status", "status", "Choice", choices="new\npaid\nshipped")
    add_field(page, "Ordered on", "ordered_on", "Date")
    add_field(page, "Notes", "notes", "Long text")
    expect(page.locator("#field-list tbody tr")).to_have_count(5)
    screenshot(page, "fields-editor")

    page.get_by_role("link", name="Rules").click()
    page.get_by_label("Field", exact=True).select_option("total")
    page.get_by_label("Kind").select_option(label="Minimum")
    page.get_by_label("Limit").fill("0")  # appears with the kind; the field stays chosen
    expect(page.get_by_label("Field", exact=True)).to_have_value("total")
    page.get_by_label(re.compile(r"^Message")).fill("A total cannot be negative.")
    page.get_by_role("button", name="Add rule").click()
    expect(page.locator("table.data")).to_contain_text("A total cannot be negative.")
    screenshot(page, "rules-editor")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tables").click()
    expect(page.locator("table.data")).to_contain_text("Orders")
    screenshot(page, "table-list")

    # A record: errors inline (live on blur, then from saving), then created.
    page.goto("/records/orders/new")
    page.get_by_label("Total").fill("-5")
    page.get_by_label("Status").focus()  # leaving Total validates it
    expect(page.locator("#errors-f_total")).to_have_text("A total cannot be negative.")
    page.get_by_role("button", name="Create", exact=True).click()
    expect(page.locator("#errors-f_number")).to_have_text("This field is required.")
    expect(page.locator("#errors-f_total")).to_have_text("A total cannot be negative.")
    expect(page.get_by_label("Total")).to_have_value("-5")
    screenshot(page, "record-form-errors")

    page.get_by_label(re.compile(r"^Number")).fill("SO-1")
    page.get_by_label("Total").fill("12.5")
    page.get_by_label("Status").select_option("new")
    page.get_by_label("Ordered on").fill("2026-10-01")
    page.get_by_label("Notes").fill("Urgent delivery")
    page.get_by_role("button", name="Create", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile(r"Orders #\d+"))).to_be_visible()
    expect(page.locator("dl.record")).to_contain_text("12.50")

    # Edit it; the detail shows the change in its history.
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Status").select_option("paid")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".history")).to_contain_text("Updated")
    expect(page.locator(".history")).to_contain_text("new → paid")
    screenshot(page, "record-detail")

    # Many records: search, sort and page without reloading the page.
    table = Table.objects.get(slug="orders")
    records.bulk_create(
        table,
        [
            {"number": f"SO-{i:03d}", "total": str(i), "status": "shipped", "notes": "Long " * 30}
            for i in range(100, 160)
        ],
    )
    page.get_by_role("link", name="Orders", exact=True).click()
    expect(page.locator("#record-count")).to_contain_text("61 records")
    page.get_by_label("Search").fill("urgent")
    expect(page.locator("#record-count")).to_contain_text("1 record matches")
    expect(page).to_have_url(re.compile(r"q=urgent"))
    page.get_by_label("Search").fill("")
    expect(page.locator("#record-count")).to_contain_text("61 records")
    page.locator("#sort-total").click()
    expect(page.locator("#sort-total")).to_contain_text("▲")
    page.locator("#sort-total").click()
    expect(page.locator("#sort-total")).to_contain_text("▼")
    expect(page.locator("#record-table tbody tr").first).to_contain_text("SO-159")
    page.get_by_role("link", name="Page 2").click()
    expect(page.locator("#record-count")).to_contain_text("showing 26\N{EN DASH}50")
    expect(page).to_have_url(re.compile(r"page=2"))
    expect(page.locator("#record-table tbody tr").first).to_contain_text("SO-134")
    screenshot(page, "record-list")

    # Filters compile to the query language.
    page.get_by_text("Filters").click()
    page.get_by_label("Status").select_option("paid")
    expect(page.locator("#record-count")).to_contain_text("1 record matches")

    # Delete with confirmation.
    page.locator("#record-table tbody tr").first.get_by_role("link").first.click()
    page.get_by_role("link", name="Delete…").click()
    page.get_by_role("button", name="Delete record").click()
    expect(page.locator(".messages")).to_contain_text("deleted")
    assert not Record.objects.filter(table=table, data__number="SO-1").exists()
    page.goto("/")
    expect(page.locator("#records-count")).to_have_text("60")
    screenshot(page, "dashboard")

    # A type change that cannot convert the stored values is refused, with the reason.
    page.goto("/tables/orders/fields/number/edit")
    page.get_by_label("Type").select_option(label="Integer")
    page.get_by_role("button", name="Save field").click()
    expect(page.locator("#form-errors")).to_contain_text("values of 'number' cannot become integer")
    expect(page.get_by_label("Type")).to_have_value("integer")  # what the admin chose stays
    screenshot(page, "field-type-refused")


def test_business_user_sees_only_granted_tables(new_page: Any):
    granted = schema.create_table("Customers", "customers")
    schema.add_field(granted, name="Name", key="name", type="text", required=True)
    hidden = schema.create_table("Payroll", "payroll")
    records.create_record(granted, {"name": "Ada"})
    TableGrant.objects.create(table=granted, group=Group.objects.create(name="sales"))
    make_user("bea", groups=("sales",))

    page = new_page(PHONE)
    log_in(page, "bea")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Tables")).to_have_count(0)
    nav.get_by_role("link", name="Records").click()
    expect(page.locator("main")).to_contain_text("Customers")
    expect(page.locator("main")).not_to_contain_text(hidden.name)
    page.get_by_role("link", name="Customers").click()
    expect(page.locator("#record-count")).to_contain_text("1 record")
    expect(page.get_by_role("link", name="New record")).to_have_count(0)  # view only
    screenshot(page, "record-list-phone")

    assert page.goto("/tables/").status == 403
    assert page.goto("/records/payroll/").status == 404
    assert page.goto("/records/customers/new").status == 403
