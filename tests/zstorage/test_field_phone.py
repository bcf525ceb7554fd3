"""The phone field type, added as one class (``zstorage/fields/phone.py``): canonical E.164
values, grouped display, conversion from and to text, the query language (in memory and in
the database, agreeing) and the REST API."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from tests.zstorage.builders import make_field, make_table
from zstorage import records, schema
from zstorage.errors import QueryError, SchemaChangeRefused
from zstorage.fields import InvalidValue, kind_of
from zstorage.fields.phone import MESSAGE
from zstorage.models import Field, Record
from zstorage.query import FieldSpec, compile_query

API = "/api/v1/zstorage"
PHONE = kind_of("phone")


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("+442079460958", "+442079460958"),
        ("+44 20 7946 0958", "+442079460958"),
        ("  +44 (0)20 7946 0958 ", "+442079460958"),
        ("+1 (212) 555-0123", "+12125550123"),
        ("+49 30/1234-5678", "+493012345678"),
        ("+33.6.12.34.56.78", "+33612345678"),
        ("+123456789012345", "+123456789012345"),
    ],
)
def test_international_spellings_become_e164(typed: str, canonical: str):
    assert PHONE.coerce(typed, {}) == canonical


@pytest.mark.parametrize(
    "typed",
    [
        "(020) 7946-0958",  # national: the country would be a guess
        "020 7946 0958",
        "0044 20 7946 0958",  # an international call prefix: not the same in every country
        "442079460958",
        "+0 20 7946 0958",  # no country code starts with 0
        "+1234567",  # seven digits
        "+1234567890123456",  # sixteen digits
        "+44 20 7946 0958 ext. 12",
        "+44 20 7946 0958 / +44 20 7946 0959",
        "",
        442079460958,
        None,
    ],
)
def test_what_would_need_a_guess_is_refused(typed: Any):
    with pytest.raises(InvalidValue) as caught:
        PHONE.coerce(typed, {})
    assert str(caught.value) == MESSAGE


@pytest.mark.parametrize(
    ("canonical", "shown"),
    [
        ("+442079460958", "+44 207 946 0958"),
        ("+12125550123", "+1 212 555 0123"),
        ("+353861234567", "+353 861 234 567"),
        ("+74951234567", "+7 495 123 4567"),
        ("+33612345678", "+33 612 345 678"),
        ("+35312345", "+353 123 45"),
    ],
)
def test_display_groups_the_country_code_then_threes(canonical: str, shown: str):
    assert PHONE.display(canonical) == shown
    assert PHONE.coerce(shown, {}) == canonical  # what is shown reads back


def test_a_phone_is_text_to_the_other_types():
    assert PHONE.widget == "tel"
    assert PHONE.searchable
    assert kind_of("text").convert("+442079460958", {}) == "+442079460958"
    assert PHONE.convert("+44 20 7946 0958", {}) == "+442079460958"
    assert PHONE.csv_format("+442079460958") == "'+442079460958"  # not a spreadsheet formula
    assert PHONE.csv_parse("'+442079460958") == "+442079460958"


@pytest.mark.django_db
def test_a_text_field_converts_to_phone_and_back():
    table = make_table("people")
    tel = make_field(table, "tel")
    ada = records.create_record(table, {"tel": "+44 20 7946 0958"})
    national = records.create_record(table, {"tel": "(020) 7946-0958"})
    with pytest.raises(SchemaChangeRefused) as refused:
        schema.update_field(tel, type="phone")
    assert f"record {national.pk}: '(020) 7946-0958'" in refused.value.message
    records.update_record(table, national.pk, {"tel": "+44 20 7946 0959"})
    tel = Field.objects.get(pk=tel.pk)  # the refused change left its mark on the instance
    schema.update_field(tel, type="phone")
    assert Record.objects.get(pk=ada.pk).data == {"tel": "+442079460958"}
    schema.update_field(tel, type="text")
    assert Record.objects.get(pk=national.pk).data == {"tel": "+442079460959"}


# The query language -------------------------------------------------------------------------

TEL = FieldSpec("tel", "phone")


@pytest.mark.parametrize(
    ("query", "path", "detail"),
    [
        ({"tel": "020 7946 0958"}, "tel", MESSAGE),
        ({"tel": {"$in": ["+442079460958", "nope"]}}, "tel.$in[1]", MESSAGE),
        ({"tel": 442079460958}, "tel", "a phone field compares with text, not a number."),
        ({"tel": {"$all": ["+44"]}}, "tel.$all", "unknown operator '$all'."),
    ],
)
def test_a_bad_phone_operand_names_its_path(query: Any, path: str, detail: str):
    with pytest.raises(QueryError) as caught:
        compile_query(query, [TEL])
    assert (caught.value.path, caught.value.detail) == (path, detail)


QUERIES = [
    ({"tel": "+44 20 7946 0958"}, {"ada"}),
    ({"tel": {"$eq": "+44 (0)20 7946 0958"}}, {"ada"}),
    ({"tel": {"$ne": "+442079460958"}}, {"bob", "cy", "nobody"}),
    ({"tel": {"$in": ["+1 212 555 0123", "+33 6 12 34 56 78"]}}, {"bob", "cy"}),
    ({"tel": {"$nin": ["+1 212 555 0123"]}}, {"ada", "cy", "nobody"}),
    ({"tel": {"$exists": True}}, {"ada", "bob", "cy"}),
    ({"tel": {"$exists": False}}, {"nobody"}),
    ({"tel": {"$contains": "7946 0958"}}, {"ada"}),
    ({"tel": {"$icontains": "555-01"}}, {"bob"}),
    ({"tel": {"$startswith": "+3"}}, {"cy"}),
    ({"tel": {"$gte": "+2", "$lt": "+4"}}, {"cy"}),
    ({"$not": {"tel": {"$startswith": "+44"}}}, {"bob", "cy", "nobody"}),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("query", "expected"), QUERIES)
def test_queries_match_alike_in_memory_and_in_the_database(query: Any, expected: set[str]):
    table = make_table("people")
    make_field(table, "name")
    fields = [make_field(table, "tel", "phone")]
    for name, tel in [
        ("ada", "+44 20 7946 0958"),
        ("bob", "+1 212 555 0123"),
        ("cy", "+33 6 12 34 56 78"),
        ("nobody", None),
    ]:
        records.create_record(table, {"name": name, "tel": tel})
    compiled = compile_query(query, fields)
    in_memory = {r.data["name"] for r in table.records.all() if compiled.matches(r.data, r.pk)}
    in_database = {r.data["name"] for r in table.records.filter(compiled.to_q())}
    assert in_memory == in_database == expected


# The REST API -------------------------------------------------------------------------------


@pytest.fixture
def api() -> APIClient:
    client = APIClient()
    user = User.objects.create_user("root", password="x" * 12)
    user.groups.add(Group.objects.get(name="admins"))
    client.force_authenticate(user)
    return client


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.content
    return response.json() if response.content else None


@pytest.mark.django_db
def test_the_api_defines_writes_queries_and_searches_phone_fields(api: APIClient):
    ok(api.post(f"{API}/tables/", {"name": "People", "slug": "people"}, format="json"), 201)
    field = {"name": "Phone", "key": "tel", "type": "phone"}
    created = ok(api.post(f"{API}/tables/people/fields/", field, format="json"), 201)
    assert created["type"] == "phone"
    url = f"{API}/tables/people/records/"
    ada = ok(api.post(url, {"tel": "+44 20 7946 0958"}, format="json"), 201)
    assert ada["data"] == {"tel": "+442079460958"}
    ok(api.post(url, {"tel": "+1 212 555 0123"}, format="json"), 201)
    refused = ok(api.post(url, {"tel": "(020) 7946-0958"}, format="json"), 400)
    assert refused["fields"] == {"tel": [MESSAGE]}

    body = ok(api.get(url, {"query": '{"tel": "+44 (0)20 7946 0958"}'}))
    assert [r["id"] for r in body["results"]] == [ada["id"]]
    query = {"query": {"tel": {"$contains": "946 09"}}}
    body = ok(api.post(f"{API}/tables/people/records/query", query, format="json"))
    assert [r["id"] for r in body["results"]] == [ada["id"]]
    body = ok(api.get(url, {"search": "+442079460958"}))
    assert [r["id"] for r in body["results"]] == [ada["id"]]
    body = ok(api.get(url, {"sort": "-tel"}))
    assert [r["data"]["tel"] for r in body["results"]] == ["+442079460958", "+12125550123"]
