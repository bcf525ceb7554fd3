"""CSV export of the current filter and CSV import with a preview, all or nothing."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.zstorage.builders import make_field, make_rule, make_table
from zstorage import records
from zstorage.models import Table

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client: Client) -> Client:
    user = User.objects.create_user("root")
    user.groups.add(Group.objects.get(name="admins"))
    client.force_login(user)
    return client


@pytest.fixture
def contacts() -> Table:
    table = make_table("contacts", "Contacts")
    name = make_field(table, "name", required=True)
    make_field(table, "age", "integer")
    make_field(table, "vip", "boolean")
    make_field(table, "tags", "multi_choice", options={"choices": ["a", "b"]})
    make_rule(table, "unique", "Name taken.", on=name)
    return table


def upload(client: Client, text: str) -> Any:
    file = SimpleUploadedFile("contacts.csv", text.encode(), content_type="text/csv")
    return client.post("/records/contacts/import", {"file": file})


def exported(client: Client, query: str = "") -> list[list[str]]:
    response = client.get(f"/records/contacts/export.csv{query}")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="contacts.csv"'
    text = response.getvalue().decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def test_export_writes_the_current_filter_and_sort(admin: Client, contacts: Table):
    records.create_record(contacts, {"name": "Ada", "age": 36, "vip": True, "tags": ["a", "b"]})
    records.create_record(contacts, {"name": "Bob", "age": 20})
    records.create_record(contacts, {"name": "=cmd()", "age": 50})
    rows = exported(admin, "?f_age__from=30&sort=-age")
    assert rows[0] == ["id", "name", "age", "vip", "tags"]
    assert [row[1:] for row in rows[1:]] == [
        ["'=cmd()", "50", "", ""],  # a formula is quoted so a spreadsheet shows it as text
        ["Ada", "36", "true", "a, b"],
    ]


def test_an_export_imports_back(admin: Client, contacts: Table):
    records.create_record(contacts, {"name": "=Ada", "age": 36, "vip": True, "tags": ["a", "b"]})
    text = "\n".join(",".join(f'"{cell}"' for cell in row) for row in exported(admin))
    records.delete_record(contacts, contacts.records.get().pk)
    preview = upload(admin, text)
    assert preview.status_code == 200
    batch = preview.context["batch"]
    assert admin.post("/records/contacts/import", {"batch": batch}).status_code == 302
    assert contacts.records.get().data == {
        "name": "=Ada",
        "age": 36,
        "vip": True,
        "tags": ["a", "b"],
    }


def test_import_previews_then_creates_on_confirmation(admin: Client, contacts: Table):
    preview = upload(admin, "Name,age,vip\nAda,36,yes\nBob,,no\n")
    assert preview.status_code == 200
    body = preview.content.decode()
    assert "Ready to import 2 records" in body
    assert contacts.records.count() == 0  # the preview wrote nothing

    done = admin.post("/records/contacts/import", {"batch": preview.context["batch"]})
    assert done["Location"] == "/records/contacts/"
    assert sorted(r.data["name"] for r in contacts.records.all()) == ["Ada", "Bob"]
    again = admin.post("/records/contacts/import", {"batch": preview.context["batch"]})
    assert "expired" in again.content.decode()
    assert contacts.records.count() == 2


def test_import_lists_each_rows_errors_and_imports_nothing(admin: Client, contacts: Table):
    records.create_record(contacts, {"name": "Ada"})
    preview = upload(admin, "name,age\nAda,1\nBob,old\nCy,3\nCy,4\n,5\n")
    assert preview.status_code == 422
    errors = dict(preview.context["row_errors"])
    assert errors[1] == {"name": ["Name taken."]}
    assert errors[2] == {"age": ["Enter a whole number."]}
    assert errors[4] == {"name": ["Name taken."]}  # the file's own duplicate
    assert errors[5] == {"name": ["This field is required."]}
    assert 3 not in errors
    assert "batch" not in preview.context
    assert "4 of 5 rows cannot be imported" in preview.content.decode()
    assert contacts.records.count() == 1


def test_import_refuses_unknown_columns(admin: Client, contacts: Table):
    preview = upload(admin, "name,shoe size\nAda,40\n")
    assert preview.status_code == 422
    assert "Unknown columns: shoe size" in preview.content.decode()


def test_only_the_newest_preview_of_a_session_can_be_confirmed(admin: Client, contacts: Table):
    first = upload(admin, "name\nAda\n")
    second = upload(admin, "name\nBob\n")
    stale = admin.post("/records/contacts/import", {"batch": first.context["batch"]})
    assert "expired" in stale.content.decode()
    admin.post("/records/contacts/import", {"batch": second.context["batch"]})
    assert [r.data["name"] for r in contacts.records.all()] == ["Bob"]
