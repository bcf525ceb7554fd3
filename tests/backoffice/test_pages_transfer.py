"""CSV export of the current filter and CSV import with a preview, all or nothing."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.test import Client

from backoffice.uploads import MULTIPART_ALLOWANCE
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
    records.update_record(contacts, contacts.records.get(data__name="Ada").pk, {"age": 37})
    rows = exported(admin, "?f_age__from=30&sort=-age")
    assert rows[0] == ["id", "version", "name", "age", "vip", "tags"]
    assert [row[1] for row in rows[1:]] == ["1", "2"]  # each record's version
    assert [row[2:] for row in rows[1:]] == [
        ["'=cmd()", "50", "", ""],  # a formula is quoted so a spreadsheet shows it as text
        ["Ada", "37", "true", "a, b"],
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
    form = admin.get("/records/contacts/import").content.decode()
    assert "at most 5000 rows and 5.0\xa0MB" in form, "the page states both limits"
    preview = upload(admin, "Name,age,vip\nAda,36,yes\nBob,,no\n")
    assert preview.status_code == 200
    body = preview.content.decode()
    assert "Ready to create 2 new records" in body
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


# An upload larger than the import's cap is refused by its Content-Length, before anything
# reads its body: the CSRF check would otherwise spool the whole file to disk first.

RECEIVED: list[str] = []


class SentinelUploadHandler(FileUploadHandler):
    """First in FILE_UPLOAD_HANDLERS: notes every file Django starts to read from a body, then
    lets the real handlers take it."""

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        RECEIVED.append(self.file_name or "")

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


@pytest.fixture
def sentinel(settings: Any) -> list[str]:
    settings.FILE_UPLOAD_HANDLERS = [
        f"{__name__}.SentinelUploadHandler",
        *settings.FILE_UPLOAD_HANDLERS,
    ]
    RECEIVED.clear()
    return RECEIVED


@pytest.fixture
def small_cap(settings: Any) -> int:
    settings.QUAYMASTER_IMPORT_MAX_BYTES = 10_000
    return 10_000


def csv_of(size: int) -> str:
    """A valid contacts CSV of exactly ``size`` bytes: unique names padded to fit."""
    lines, total, n = ["name"], 5, 0
    while total + 20 < size:
        lines.append(f"person-{n:012d}")  # 19 characters and a newline
        total += 20
        n += 1
    lines.append("x" * (size - total - 1))
    return "\n".join(lines) + "\n"


def test_an_upload_over_the_cap_is_refused_before_its_body_is_read(
    admin: Client, contacts: Table, small_cap: int, sentinel: list[str]
):
    text = csv_of(small_cap + MULTIPART_ALLOWANCE + 1000)
    response = upload(admin, text)
    assert response.status_code == 413
    body = response.content.decode()
    assert "The file is larger than 9.8\xa0KB: nothing was imported." in body
    assert 'id="id_file"' in body  # the import page, to choose another file
    assert sentinel == []  # no upload handler saw the file: nothing was read or spooled
    assert contacts.records.count() == 0


def test_the_refusal_goes_by_the_header_without_reading_a_byte(
    admin: Client, contacts: Table, sentinel: list[str]
):
    class Body(io.BytesIO):
        """The request's input: notes every read."""

        reads: list[int] = []

        def read(self, size: int | None = -1, /) -> bytes:
            self.reads.append(-1 if size is None else size)
            return super().read(size)

        def readline(self, size: int | None = -1, /) -> bytes:
            return self.read(size)

    start = b"--x\r\n"
    body = Body(start)
    environ: dict[str, Any] = {"wsgi.input": body}
    response = admin.generic(
        "POST",
        "/records/contacts/import",
        start,
        content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(1024**3),  # announced: 1 GB
        **environ,
    )
    assert body.reads == []
    assert response.status_code == 413
    assert sentinel == []


def test_a_file_just_under_the_cap_still_imports(
    admin: Client, contacts: Table, small_cap: int, sentinel: list[str]
):
    text = csv_of(small_cap - 10)
    preview = upload(admin, text)
    assert preview.status_code == 200, preview.content.decode()
    assert sentinel == ["contacts.csv"]
    rows = text.count("\n") - 1
    assert f"Ready to create {rows} new records" in preview.content.decode()
    done = admin.post("/records/contacts/import", {"batch": preview.context["batch"]})
    assert done.status_code == 302
    assert contacts.records.count() == rows


def test_a_file_over_the_cap_in_a_body_under_the_allowance_meets_the_pages_own_check(
    admin: Client, contacts: Table, small_cap: int
):
    response = upload(admin, csv_of(small_cap + 10))
    assert response.status_code == 422
    assert "The file is larger than 9.8\xa0KB" in response.content.decode()
    assert contacts.records.count() == 0


def test_under_htmx_the_refusal_redirects_to_the_import_page_with_the_message(
    admin: Client, contacts: Table, small_cap: int, sentinel: list[str]
):
    file = SimpleUploadedFile("contacts.csv", csv_of(200_000).encode(), content_type="text/csv")
    response = admin.post("/records/contacts/import", {"file": file}, HTTP_HX_REQUEST="true")
    assert response.status_code == 413
    assert response["HX-Redirect"] == "/records/contacts/import"
    assert sentinel == []
    page = admin.get("/records/contacts/import")
    assert "The file is larger than 9.8\xa0KB: nothing was imported." in page.content.decode()


def test_an_oversized_upload_from_someone_not_allowed_gets_the_pages_own_answer(
    client: Client, contacts: Table, small_cap: int, sentinel: list[str]
):
    big = csv_of(200_000)
    anonymous = upload(client, big)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/login/?next=/records/contacts/import")

    client.force_login(User.objects.create_user("clerk"))  # no grant on the table
    assert upload(client, big).status_code == 404
    assert sentinel == []
