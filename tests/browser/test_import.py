"""CSV round trip in a real browser: a table is exported, imported back by id unchanged (nothing
to write), then with one cell edited (one record updated, its version raised)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import log_in, make_user, screenshot
from zstorage import records, schema
from zstorage.models import Record

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def upload(page: Any, content: bytes, mode: str, shot: str = "") -> None:
    page.goto("/records/contacts/")
    page.get_by_role("link", name="Import CSV").click()
    page.get_by_label(mode).check()
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "contacts.csv", "mimeType": "text/csv", "buffer": content}]
    )
    if shot:
        screenshot(page, shot)
    page.get_by_role("button", name="Preview").click()


def test_an_export_comes_back_by_id_and_one_edited_cell_updates_one_record(page: Any):
    table = schema.create_table("Contacts", "contacts")
    schema.add_field(table, name="Name", key="name", type="text", required=True)
    schema.add_field(table, name="Age", key="age", type="integer")
    schema.add_field(table, name="City", key="city", type="text")
    for name, age in [("Ada", 36), ("Bob", 20), ("Cy", 51), ("Dee", 44)]:
        records.create_record(table, {"name": name, "age": age, "city": "Oslo"})
    make_user("root", admin=True)
    log_in(page, "root")

    page.goto("/records/contacts/")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    exported = Path(download.value.path()).read_bytes()

    upload(page, exported, "Update by id", shot="import-form")
    expect(page.locator("#ready-title")).to_have_text(
        "Ready to import: 0 to create, 0 to update, 4 unchanged"
    )
    expect(page.locator("#nothing-to-import")).to_be_visible()
    expect(page.locator("#preview tbody tr.unchanged")).to_have_count(4)
    screenshot(page, "import-unchanged")

    rows = list(csv.reader(io.StringIO(exported.decode("utf-8-sig"))))
    assert rows[0] == ["id", "version", "name", "age", "city"]
    bob = next(row for row in rows if row[2] == "Bob")
    bob[4] = "Bergen"
    edited = io.StringIO()
    csv.writer(edited).writerows(rows)
    upload(page, edited.getvalue().encode(), "Update by id")
    expect(page.locator("#ready-title")).to_have_text(
        "Ready to import: 0 to create, 1 to update, 3 unchanged"
    )
    changed = page.locator("#preview tbody tr.update")
    expect(changed).to_contain_text("Bob")
    expect(changed.locator("del")).to_have_text("Oslo")
    expect(changed.locator("ins")).to_have_text("Bergen")
    screenshot(page, "import-one-update")

    page.get_by_role("button", name="Import: 0 to create, 1 to update").click()
    expect(page.locator(".messages")).to_contain_text(
        "Imported into Contacts: 0 created, 1 updated, 3 unchanged."
    )
    page.goto(f"/records/contacts/{bob[0]}/")
    expect(page.locator("main")).to_contain_text("Bergen")
    expect(page.locator("main")).to_contain_text("Version 2")
    assert sorted(Record.objects.values_list("version", flat=True)) == [1, 1, 1, 2]
