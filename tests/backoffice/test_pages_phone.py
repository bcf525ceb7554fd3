"""The phone field type in the pages, from its one class (``zstorage/fields/phone.py``):
defined in the field editor, typed in the record form, shown grouped in the list and on the
record, filtered and searched, exported to CSV and imported back."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.zstorage.builders import make_field, make_table
from zstorage import records
from zstorage.fields.phone import MESSAGE
from zstorage.models import Field, Table

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client: Client) -> Client:
    user = User.objects.create_user("root")
    user.groups.add(Group.objects.get(name="admins"))
    client.force_login(user)
    return client


@pytest.fixture
def people() -> Table:
    table = make_table("people", "People")
    make_field(table, "name", required=True)
    make_field(table, "tel", "phone")
    return table


def rows_of(response: Any) -> list[str]:
    return [r.data["name"] for r in response.context["page"].object_list]


def test_the_field_editor_offers_phone(admin: Client):
    make_table("people")
    page = admin.get("/tables/people/fields/").content.decode()
    assert '<option value="phone"' in page
    data = {"name": "Phone", "key": "tel", "type": "phone", "default": "+44 20 7946 0958"}
    response = admin.post("/tables/people/fields/", data)
    assert response.status_code == 302, response.content.decode()
    field = Field.objects.get(table__slug="people", key="tel")
    assert (field.type, field.default) == ("phone", "+442079460958")
    listed = admin.get("/tables/people/fields/").content.decode()
    assert "<td>Phone</td>" in listed


def test_the_form_takes_a_phone_number_and_shows_it_grouped(admin: Client, people: Table):
    page = admin.get("/records/people/new").content.decode()
    assert 'type="tel" name="f_tel" id="id_f_tel" value=""' in page
    assert 'autocomplete="tel"' in page

    refused = admin.post("/records/people/new", {"f_name": "Ada", "f_tel": "(020) 7946-0958"})
    assert refused.status_code == 422
    assert {i.field.key: i.errors for i in refused.context["inputs"]}["tel"] == [MESSAGE]
    assert 'value="(020) 7946-0958"' in refused.content.decode()  # kept as typed

    created = admin.post("/records/people/new", {"f_name": "Ada", "f_tel": "+44 20 7946 0958"})
    assert created.status_code == 302
    record = people.records.get()
    assert record.data == {"name": "Ada", "tel": "+442079460958"}
    edit = admin.get(f"/records/people/{record.pk}/edit").content.decode()
    assert 'value="+44 207 946 0958"' in edit
    saved = admin.post(
        f"/records/people/{record.pk}/edit",
        {"f_name": "Ada", "f_tel": "+44 207 946 0958", "version": str(record.version)},
    )
    assert saved.status_code == 302
    record.refresh_from_db()
    assert record.version == 1  # the same number, spelled as shown: nothing changed
    assert "+44 207 946 0958" in admin.get(f"/records/people/{record.pk}/").content.decode()


def test_the_list_shows_filters_and_searches_phone_numbers(admin: Client, people: Table):
    records.create_record(people, {"name": "Ada", "tel": "+44 20 7946 0958"})
    records.create_record(people, {"name": "Bob", "tel": "+1 212 555 0123"})
    records.create_record(people, {"name": "Cy"})
    page = admin.get("/records/people/?sort=tel")
    assert rows_of(page) == ["Bob", "Ada", "Cy"]
    body = page.content.decode()
    assert "+44 207 946 0958" in body
    assert 'name="f_tel"' in body

    assert rows_of(admin.get("/records/people/", {"f_tel": "7946 0958"})) == ["Ada"]
    assert rows_of(admin.get("/records/people/", {"f_tel": "+1 (212)"})) == ["Bob"]
    assert rows_of(admin.get("/records/people/", {"q": "+12125550123"})) == ["Bob"]


def test_csv_exports_and_imports_phone_numbers(admin: Client, people: Table):
    records.create_record(people, {"name": "Ada", "tel": "+44 20 7946 0958"})
    response = admin.get("/records/people/export.csv")
    rows = list(csv.reader(io.StringIO(response.getvalue().decode("utf-8-sig"))))
    assert [row[2:] for row in rows] == [["name", "tel"], ["Ada", "'+442079460958"]]

    text = "name,tel\nBob,'+442079460958\nCy,+1 212 555 0123\nDee,\n"
    upload = SimpleUploadedFile("people.csv", text.encode(), content_type="text/csv")
    preview = admin.post("/records/people/import", {"file": upload})
    assert preview.status_code == 200, preview.content.decode()
    assert admin.post("/records/people/import", {"batch": preview.context["batch"]}).status_code
    assert {r.data["name"]: r.data.get("tel") for r in people.records.all()} == {
        "Ada": "+442079460958",
        "Bob": "+442079460958",
        "Cy": "+12125550123",
        "Dee": None,
    }

    bad = SimpleUploadedFile("people.csv", b"name,tel\nEve,020 7946 0958\n", "text/csv")
    refused = admin.post("/records/people/import", {"file": bad})
    assert refused.status_code == 422
    assert refused.context["row_errors"] == [(1, {"tel": [MESSAGE]})]
