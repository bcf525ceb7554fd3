"""CSV import in "Update by id" mode: an export comes back as updates of the records it came
from (versions checked), rows without an id create, rows equal to their record write nothing."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from queues.models import OutboxMessage, Queue, QueueLink
from tests.zstorage.builders import make_field, make_rule, make_table
from zstorage import records
from zstorage.models import Record, RecordChange, Table, TableGrant

pytestmark = pytest.mark.django_db

URL = "/records/contacts/import"


@pytest.fixture
def admin(client: Client) -> Client:
    user = User.objects.create_user("root")
    user.groups.add(Group.objects.get(name="admins"))
    client.force_login(user)
    return client


@pytest.fixture
def contacts() -> Table:
    """Four contacts, the table linked to a queue so that every write leaves an outbox row."""
    table = make_table("contacts", "Contacts")
    name = make_field(table, "name", required=True)
    make_field(table, "age", "integer")
    make_field(table, "vip", "boolean")
    make_field(table, "tags", "multi_choice", options={"choices": ["a", "b"]})
    make_rule(table, "unique", "Name taken.", on=name)
    queue = Queue.objects.create(name="contact-events", type="database")
    QueueLink.objects.create(table=table, queue=queue, handler="on_contact")
    people: list[dict[str, Any]] = [
        {"name": "Ada", "age": 36, "vip": True, "tags": ["a", "b"]},
        {"name": "=Bob", "age": 20},
        {"name": "Cy", "vip": False},
        {"name": "Dee", "tags": ["b"]},
    ]
    for data in people:
        records.create_record(table, data)
    return table


def export(client: Client) -> list[list[str]]:
    response = client.get("/records/contacts/export.csv")
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(response.getvalue().decode("utf-8-sig"))))


def text_of(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


def upload(client: Client, text: str, mode: str = "update") -> Any:
    file = SimpleUploadedFile("contacts.csv", text.encode(), content_type="text/csv")
    return client.post(URL, {"file": file, "mode": mode})


def pk(table: Table, name: str) -> int:
    return table.records.get(data__name=name).pk


def state(table: Table) -> tuple[dict[int, tuple[int, dict[str, Any]]], int, int]:
    """Every record's version and data, the audit rows and the outbox rows."""
    found = {r.pk: (r.version, r.data) for r in table.records.all()}
    return found, RecordChange.objects.count(), OutboxMessage.objects.count()


def test_the_form_offers_both_modes(admin: Client, contacts: Table):
    page = admin.get(URL).content.decode()
    assert "Create new records" in page
    assert "Update by id" in page
    assert 'value="create" id="id_mode_create" aria-describedby="help_mode_create" checked' in page


def test_an_export_imported_back_unchanged_changes_nothing(admin: Client, contacts: Table):
    before = state(contacts)
    preview = upload(admin, text_of(export(admin)))
    assert preview.status_code == 200, preview.content.decode()
    body = preview.content.decode()
    assert "Ready to import: 0 to create, 0 to update, 4 unchanged" in body
    assert "Every row equals its record: there is nothing to import." in body
    assert "batch" not in preview.context  # nothing to confirm
    assert [row["plan"] for row in preview.context["preview_rows"]] == ["unchanged"] * 4
    assert state(contacts) == before  # no version, no audit row, no outbox row


def test_one_edited_cell_updates_exactly_that_record(admin: Client, contacts: Table):
    rows = export(admin)
    ada = next(row for row in rows if row[2] == "Ada")
    ada[3] = "37"
    versions, audits, outbox = state(contacts)
    preview = upload(admin, text_of(rows))
    assert preview.status_code == 200, preview.content.decode()
    body = preview.content.decode()
    assert "Ready to import: 0 to create, 1 to update, 3 unchanged" in body
    assert '<del title="The record\'s value now">36</del> <ins>37</ins>' in body
    assert state(contacts) == (versions, audits, outbox)  # the preview wrote nothing

    done = admin.post(URL, {"batch": preview.context["batch"]}, follow=True)
    assert "Imported into Contacts: 0 created, 1 updated, 3 unchanged." in done.content.decode()
    record = contacts.records.get(pk=int(ada[0]))
    assert (record.version, record.data["age"]) == (2, 37)
    assert {r.pk: r.version for r in contacts.records.exclude(pk=record.pk)} == {
        k: v for k, (v, _) in versions.items() if k != record.pk
    }
    change = RecordChange.objects.get(record_id=record.pk, version=2)
    assert change.changes == {"age": [36, 37]}
    assert RecordChange.objects.count() == audits + 1
    assert OutboxMessage.objects.count() == outbox + 1


def test_rows_without_an_id_create_and_an_empty_cell_clears(admin: Client, contacts: Table):
    ada = pk(contacts, "Ada")
    text = f"id,name,age,tags\n{ada},Ada,,a\n,Eve,50,\n"
    preview = upload(admin, text)
    assert "Ready to import: 1 to create, 1 to update, 0 unchanged" in preview.content.decode()
    plans = [(row["plan"], row["record_id"]) for row in preview.context["preview_rows"]]
    assert plans == [("update", ada), ("create", None)]
    assert admin.post(URL, {"batch": preview.context["batch"]}).status_code == 302
    # Columns the file leaves out keep their values; an empty cell clears its value.
    assert contacts.records.get(pk=ada).data == {"name": "Ada", "vip": True, "tags": ["a"]}
    assert contacts.records.get(data__name="Eve").data == {"name": "Eve", "age": 50}


def test_a_record_changed_since_the_export_is_a_row_error(admin: Client, contacts: Table):
    rows = export(admin)
    records.update_record(contacts, pk(contacts, "Cy"), {"age": 5})
    rows[3][3] = "6"  # Cy's age, edited in the file too
    before = state(contacts)
    preview = upload(admin, text_of(rows))
    assert preview.status_code == 422
    cy = pk(contacts, "Cy")
    assert preview.context["row_errors"] == [
        (
            3,
            {
                "version": [
                    f"Record {cy} changed since it was exported: version 2 now, 1 in the file."
                ]
            },
        )
    ]
    assert "1 of 4 rows cannot be imported" in preview.content.decode()
    assert "batch" not in preview.context
    assert state(contacts) == before


@pytest.mark.parametrize(
    ("cells", "key", "message"),
    [
        ("abc,", "id", "Give the id as a whole number, as an export writes it, not 'abc'."),
        ("1.5,", "id", "Give the id as a whole number, as an export writes it, not '1.5'."),
        (
            "{ada},x",
            "version",
            "Give the version as a whole number, as an export writes it, not 'x'.",
        ),
        (
            "{ada},0x1",
            "version",
            "Give the version as a whole number, as an export writes it, not '0x1'.",
        ),
        ("999999,", "id", "Contacts has no record 999999."),
        ("-4,", "id", "Contacts has no record -4."),
        ("9" * 25 + ",", "id", "Contacts has no record " + "9" * 25 + "."),
        ("{other},1", "id", "Contacts has no record {other}."),
        (
            "{ada},99999999999999999999",
            "version",
            "version 1 now, 99999999999999999999 in the file",
        ),
    ],
)
def test_ids_and_versions_that_name_no_record_are_row_errors(
    admin: Client, contacts: Table, cells: str, key: str, message: str
):
    other = make_table("others", "Others")
    make_field(other, "name")
    ids = {"ada": pk(contacts, "Ada"), "other": records.create_record(other, {"name": "O"}).pk}
    before = state(contacts)
    preview = upload(admin, f"id,version,name\n{cells.format(**ids)},Ada 2\n")
    assert preview.status_code == 422
    [(number, errors)] = preview.context["row_errors"]
    assert number == 1
    assert list(errors) == [key]  # the row is refused for its id or version alone
    assert message.format(**ids) in " ".join(errors[key])
    assert "Error" in preview.content.decode()
    assert state(contacts) == before


def test_an_id_twice_in_the_file_is_an_error_of_the_second_row(admin: Client, contacts: Table):
    ada = pk(contacts, "Ada")
    preview = upload(admin, f"id,age\n{ada},1\n{ada},2\n")
    assert preview.context["row_errors"] == [(2, {"id": [f"Record {ada} is already in row 1."]})]


def test_create_mode_ignores_ids_and_says_the_records_are_new(admin: Client, contacts: Table):
    rows = [row for row in export(admin) if row[2] != "'=Bob"]
    for row in rows[1:]:
        row[2] += " 2"  # new names: the unique rule would refuse copies
    preview = upload(admin, text_of(rows), mode="create")
    assert "Ready to create 3 new records" in preview.content.decode()
    assert admin.post(URL, {"batch": preview.context["batch"]}).status_code == 302
    assert contacts.records.count() == 7


def test_an_update_is_validated_as_any_write(admin: Client, contacts: Table):
    ada, cy = pk(contacts, "Ada"), pk(contacts, "Cy")
    preview = upload(admin, f"id,name,age\n{ada},Cy,1\n{cy},,x\n")
    assert preview.status_code == 422
    assert dict(preview.context["row_errors"]) == {
        1: {"name": ["Name taken."]},
        2: {"age": ["Enter a whole number."], "name": ["This field is required."]},
    }


def test_a_record_changed_after_the_preview_stops_the_whole_import(admin: Client, contacts: Table):
    ada, cy = pk(contacts, "Ada"), pk(contacts, "Cy")
    preview = upload(admin, f"id,name,age\n{ada},Ada,40\n{cy},Cy,\n,Eve,3\n")
    assert "1 to create, 1 to update, 1 unchanged" in preview.content.decode()
    records.update_record(contacts, cy, {"age": 9})  # a row the import leaves unchanged
    before = state(contacts)
    done = admin.post(URL, {"batch": preview.context["batch"]})
    assert done.status_code == 422
    assert done.context["row_errors"] == [
        (
            2,
            {
                "version": [
                    f"Record {cy} changed after the file was checked: version 2 now, 1 then."
                ]
            },
        )
    ]
    assert "1 of 3 rows cannot be imported" in done.content.decode()
    assert state(contacts) == before  # neither the update nor the create was written


def test_a_record_deleted_after_the_preview_stops_the_import(admin: Client, contacts: Table):
    dee = pk(contacts, "Dee")
    preview = upload(admin, f"id,age\n{dee},4\n")
    records.delete_record(contacts, dee)
    done = admin.post(URL, {"batch": preview.context["batch"]})
    assert done.status_code == 422
    assert done.context["row_errors"] == [
        (1, {"id": [f"Record {dee} was deleted after the file was checked."]})
    ]


def grant(**can: bool) -> Client:
    group = Group.objects.create(name="sales")
    TableGrant.objects.create(table=Table.objects.get(slug="contacts"), group=group, **can)
    user = User.objects.create_user("clerk")
    user.groups.add(group)
    client = Client()
    client.force_login(user)
    return client


def test_a_user_who_may_add_but_not_change_cannot_update(contacts: Table):
    clerk = grant(can_add=True)
    ada = pk(contacts, "Ada")
    preview = upload(clerk, f"id,name\n{ada},Ada 2\n,Eve\n")
    assert preview.status_code == 422
    assert preview.context["row_errors"] == [
        (1, {"id": ["You may not change records of Contacts."]})
    ]
    assert contacts.records.get(pk=ada).data["name"] == "Ada"


def test_a_user_who_may_change_but_not_add_updates_only(contacts: Table):
    clerk = grant(can_change=True)
    page = clerk.get(URL).content.decode()
    assert 'value="update" id="id_mode_update" aria-describedby="help_mode_update" checked' in page
    ada = pk(contacts, "Ada")
    refused = upload(clerk, f"id,name\n{ada},Ada 2\n,Eve\n")
    assert refused.context["row_errors"] == [
        (2, {"__all__": ["You may not add records to Contacts."]})
    ]
    assert "(the row)" in refused.content.decode()
    preview = upload(clerk, f"id,name\n{ada},Ada 2\n")
    assert clerk.post(URL, {"batch": preview.context["batch"]}).status_code == 302
    assert contacts.records.get(pk=ada).data["name"] == "Ada 2"


def test_a_user_who_may_only_view_gets_no_import_page(contacts: Table):
    clerk = grant(can_view=True)
    assert clerk.get(URL).status_code == 403
    assert upload(clerk, "name\nEve\n").status_code == 403


def test_an_unknown_mode_is_a_form_error(admin: Client, contacts: Table):
    response = upload(admin, "name\nEve\n", mode="merge")
    assert response.status_code == 422
    assert (
        "Choose whether the rows create new records or update by id." in response.content.decode()
    )
    assert contacts.records.count() == 4


def test_a_preview_kept_by_an_older_page_has_expired(admin: Client, contacts: Table):
    session = admin.session
    session["import:old"] = {"table": contacts.pk, "rows": [{"name": "Eve"}]}
    session.save()
    response = admin.post(URL, {"batch": "old"})
    assert response.status_code == 422
    assert "This preview has expired; upload the file again." in response.content.decode()
    assert contacts.records.count() == 4


def test_the_session_keeps_one_pending_import(admin: Client, contacts: Table):
    ada = pk(contacts, "Ada")
    upload(admin, f"id,age\n{ada},1\n")
    newest = upload(admin, f"id,age\n{ada},2\n").context["batch"]
    assert [k for k, _ in admin.session.items() if k.startswith("import:")] == [f"import:{newest}"]


def test_every_field_type_comes_back_unchanged(admin: Client):
    people = make_table("people", "People")
    make_field(people, "name")
    table = make_table("contacts", "Contacts")
    for key, type_, options in [
        ("text", "text", {}),
        ("notes", "long_text", {}),
        ("count", "integer", {}),
        ("price", "decimal", {"places": 2}),
        ("flag", "boolean", {}),
        ("day", "date", {}),
        ("at", "datetime", {}),
        ("mail", "email", {}),
        ("site", "url", {}),
        ("pick", "choice", {"choices": ["x", "y, z"]}),
        ("picks", "multi_choice", {"choices": ["x", "y"]}),
        ("doc", "json", {}),
        ("person", "reference", {"table": "people"}),
        ("tel", "phone", {}),
    ]:
        make_field(table, key, type_, options=options)
    person = records.create_record(people, {"name": "P"}).pk
    records.create_record(
        table,
        {
            "text": "=1+1",
            "notes": 'two\nlines, "quoted"',
            "count": -3,
            "price": "12.50",
            "flag": False,
            "day": "2026-02-28",
            "at": "2026-02-28T13:45:00+00:00",
            "mail": "a@example.com",
            "site": "https://example.com/a?b=c",
            "pick": "y, z",
            "picks": ["x", "y"],
            "doc": {"a": [1, None, "é"]},
            "person": person,
            "tel": "+44 20 7946 0958",
        },
    )
    records.create_record(table, {})
    before = state(table)
    preview = upload(admin, text_of(export(admin)))
    assert preview.status_code == 200, preview.content.decode()
    assert "0 to create, 0 to update, 2 unchanged" in preview.content.decode()
    assert state(table) == before
    assert Record.objects.filter(table=table).count() == 2


def test_the_preview_shows_the_rows_that_change_first(admin: Client, contacts: Table):
    for n in range(21):
        records.create_record(contacts, {"name": f"P{n:02d}"})
    rows = export(admin)
    rows[-1][3] = "7"  # the last record, row 25
    preview = upload(admin, text_of(rows))
    shown = preview.context["preview_rows"]
    assert len(shown) == 20
    assert (shown[-1]["number"], shown[-1]["plan"]) == (25, "update")
    assert [row["number"] for row in shown[:-1]] == list(range(1, 20))
    body = preview.content.decode()
    assert "Preview (20 of 25 rows, rows with errors or changes first)" in body
    assert "0 to create, 1 to update, 24 unchanged" in body


def test_a_grant_taken_back_after_the_preview_stops_the_import(contacts: Table):
    clerk = grant(can_add=True, can_change=True)
    ada = pk(contacts, "Ada")
    preview = upload(clerk, f"id,name\n{ada},Ada 2\n,Eve\n")
    assert "1 to create, 1 to update" in preview.content.decode()
    TableGrant.objects.update(can_change=False)
    done = clerk.post(URL, {"batch": preview.context["batch"]})
    assert done.status_code == 422
    assert done.context["row_errors"] == [(1, {"id": ["You may not change records of Contacts."]})]
    assert contacts.records.count() == 4
    assert contacts.records.get(pk=ada).data["name"] == "Ada"


def test_a_field_keyed_version_keeps_its_column(admin: Client):
    table = make_table("contacts", "Contacts")
    make_field(table, "name")
    make_field(table, "version", "integer")
    record = records.create_record(table, {"name": "Ada", "version": 7})
    records.update_record(table, record.pk, {"name": "Ada L."})
    rows = export(admin)
    assert rows == [["id", "name", "version"], [str(record.pk), "Ada L.", "7"]]
    rows[1][2] = "8"
    preview = upload(admin, text_of(rows))
    assert "0 to create, 1 to update, 0 unchanged" in preview.content.decode()
    admin.post(URL, {"batch": preview.context["batch"]})
    stored = table.records.get()
    assert (stored.version, stored.data) == (3, {"name": "Ada L.", "version": 8})


def test_a_reference_exports_with_its_label_and_imports_back_unchanged(admin: Client):
    customers = make_table("customers", "Customers")
    make_field(customers, "name", required=True)
    orders = make_table("orders", "Orders")
    make_field(orders, "number", required=True)
    make_field(orders, "customer", "reference", options={"table": "customers"})
    ada = records.create_record(customers, {"name": "Ada Lovelace"})
    records.create_record(orders, {"number": "SO-1", "customer": ada.pk})
    records.create_record(orders, {"number": "SO-2"})

    response = admin.get("/records/orders/export.csv")
    rows = list(csv.reader(io.StringIO(response.getvalue().decode("utf-8-sig"))))
    assert rows[0] == ["id", "version", "number", "customer", "customer label"]
    assert rows[1][2:] == ["SO-1", str(ada.pk), f"#{ada.pk} Ada Lovelace"]
    assert rows[2][2:] == ["SO-2", "", ""]

    file = SimpleUploadedFile("orders.csv", text_of(rows).encode(), content_type="text/csv")
    preview = admin.post("/records/orders/import", {"file": file, "mode": "update"})
    assert preview.status_code == 200, preview.content.decode()
    assert "0 to create, 0 to update, 2 unchanged" in preview.content.decode()
