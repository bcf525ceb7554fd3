"""ZStorage's REST API as an integrator uses it: schema, records, queries, permissions."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from tests.zstorage.builders import make_field, make_table
from zstorage.models import Record, Table, TableGrant

pytestmark = pytest.mark.django_db

API = "/api/v1/zstorage"


@pytest.fixture
def admin() -> APIClient:
    client = APIClient()
    user = User.objects.create_user("root", password="x" * 12)
    user.groups.add(Group.objects.get(name="admins"))
    client.force_authenticate(user)
    return client


def business_client(table: Table | None = None, **grant: bool) -> APIClient:
    name = f"biz{User.objects.count()}"
    user = User.objects.create_user(name, password="x" * 12)
    group = Group.objects.create(name=f"team of {name}")
    user.groups.add(Group.objects.get(name="business users"), group)
    if table is not None:
        TableGrant.objects.create(table=table, group=group, **grant)
    client = APIClient()
    client.force_authenticate(user)
    return client


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.content
    return response.json() if response.content else None


@pytest.fixture
def orders(admin: APIClient) -> Table:
    ok(admin.post(f"{API}/tables/", {"name": "Customers", "slug": "customers"}, format="json"), 201)
    ok(
        admin.post(
            f"{API}/tables/customers/fields/",
            {"name": "Name", "key": "name", "type": "text", "required": True},
            format="json",
        ),
        201,
    )
    ok(admin.post(f"{API}/tables/", {"name": "Orders", "slug": "orders"}, format="json"), 201)
    fields = [
        {"name": "Number", "key": "number", "type": "text", "required": True},
        {"name": "Total", "key": "total", "type": "decimal", "options": {"places": 2}},
        {
            "name": "Status",
            "key": "status",
            "type": "choice",
            "options": {"choices": ["new", "paid", "sent"]},
        },
        {
            "name": "Customer",
            "key": "customer",
            "type": "reference",
            "options": {"table": "customers"},
        },
        {"name": "Notes", "key": "notes", "type": "long_text"},
    ]
    for field in fields:
        ok(admin.post(f"{API}/tables/orders/fields/", field, format="json"), 201)
    number = Table.objects.get(slug="orders").fields.get(key="number")
    ok(
        admin.post(
            f"{API}/tables/orders/rules/",
            {"kind": "unique", "field": number.key, "message": "This order number is taken."},
            format="json",
        ),
        201,
    )
    ok(
        admin.post(
            f"{API}/tables/orders/rules/",
            {
                "kind": "min",
                "field": "total",
                "params": {"value": 0},
                "message": "A total cannot be negative.",
            },
            format="json",
        ),
        201,
    )
    return Table.objects.get(slug="orders")


def test_an_admin_defines_a_table_and_sees_it(admin: APIClient, orders: Table):
    tables = ok(admin.get(f"{API}/tables/"))
    assert [t["slug"] for t in tables] == ["customers", "orders"]
    fields = ok(admin.get(f"{API}/tables/orders/fields/"))
    assert [f["key"] for f in fields] == ["number", "total", "status", "customer", "notes"]
    rules = ok(admin.get(f"{API}/tables/orders/rules/"))
    assert {r["kind"] for r in rules} == {"unique", "min"}


def test_a_bad_field_definition_names_what_is_wrong(admin: APIClient, orders: Table):
    body = ok(
        admin.post(
            f"{API}/tables/orders/fields/",
            {"name": "X", "key": "Bad Key", "type": "text"},
            format="json",
        ),
        400,
    )
    assert body["code"] == "invalid"
    assert "key" in body["fields"]
    body = ok(
        admin.post(
            f"{API}/tables/orders/fields/",
            {"name": "S", "key": "s", "type": "choice"},
            format="json",
        ),
        400,
    )
    assert body["code"] == "invalid_schema"
    assert "choices" in body["fields"]["options"][0]


def test_record_crud_with_versions_and_history(admin: APIClient, orders: Table):
    customer = ok(
        admin.post(f"{API}/tables/customers/records/", {"name": "Ada"}, format="json"), 201
    )
    created = ok(
        admin.post(
            f"{API}/tables/orders/records/",
            {"number": "A-1", "total": "10.5", "customer": customer["id"]},
            format="json",
        ),
        201,
    )
    assert created["data"] == {"number": "A-1", "total": "10.50", "customer": customer["id"]}
    assert created["version"] == 1
    assert created["created_by"] == "root"
    url = f"{API}/tables/orders/records/{created['id']}/"

    updated = ok(admin.patch(url, {"data": {"status": "paid"}, "version": 1}, format="json"))
    assert updated["version"] == 2
    assert updated["data"]["status"] == "paid"

    stale = ok(admin.patch(url, {"data": {"status": "sent"}, "version": 1}, format="json"), 409)
    assert stale["code"] == "version_conflict"
    stale = ok(admin.patch(url, {"status": "sent"}, format="json", HTTP_IF_MATCH='"1"'), 409)
    assert stale["code"] == "version_conflict"

    replaced = ok(admin.put(url, {"data": {"number": "A-1"}, "version": 2}, format="json"))
    assert replaced["data"] == {"number": "A-1"}

    history = ok(admin.get(url + "history"))["results"]
    assert [h["kind"] for h in history] == ["create", "update", "update"]
    assert history[1]["changes"] == {"status": [None, "paid"]}
    assert history[1]["actor"] == "root"

    ok(admin.delete(url + "?version=3"), 204)
    ok(admin.get(url), 404)


def test_validation_errors_come_all_at_once_keyed_by_field(admin: APIClient, orders: Table):
    body = ok(
        admin.post(
            f"{API}/tables/orders/records/",
            {"total": "-1", "status": "lost", "customer": 999, "colour": "red"},
            format="json",
        ),
        400,
    )
    assert body["code"] == "invalid_record"
    assert set(body["fields"]) == {"number", "total", "status", "customer", "colour"}
    assert body["fields"]["total"] == ["A total cannot be negative."]
    assert Record.objects.filter(table=orders).count() == 0


def test_unique_rule_answers_with_its_message(admin: APIClient, orders: Table):
    ok(admin.post(f"{API}/tables/orders/records/", {"number": "A-1"}, format="json"), 201)
    body = ok(admin.post(f"{API}/tables/orders/records/", {"number": "A-1"}, format="json"), 400)
    assert body["fields"] == {"number": ["This order number is taken."]}


def test_bulk_create_is_all_or_nothing_with_per_row_errors(admin: APIClient, orders: Table):
    rows = [{"number": "B-1"}, {"number": "B-2", "total": "x"}, {"number": "B-1"}]
    body = ok(
        admin.post(f"{API}/tables/orders/records/bulk", {"records": rows}, format="json"), 400
    )
    assert body["code"] == "invalid_bulk"
    assert set(body["fields"]) == {"1", "2"}
    assert body["fields"]["2"] == {"number": ["This order number is taken."]}
    assert Record.objects.filter(table=orders).count() == 0

    created = ok(
        admin.post(
            f"{API}/tables/orders/records/bulk",
            {"records": [*rows[:1], {"number": "B-2"}]},
            format="json",
        ),
        201,
    )
    updates = [
        {"id": created[0]["id"], "data": {"status": "paid"}},
        {"id": created[1]["id"], "data": {"status": "bad"}},
    ]
    body = ok(
        admin.patch(f"{API}/tables/orders/records/bulk", {"records": updates}, format="json"), 400
    )
    assert set(body["fields"]) == {"1"}
    assert not Record.objects.filter(table=orders, data__status="paid").exists()


def test_a_bulk_write_over_the_row_cap_is_413_and_writes_nothing(admin: APIClient, orders: Table):
    url = f"{API}/tables/orders/records/bulk"
    rows = [{"number": f"C-{i}"} for i in range(10_000)]
    body = ok(admin.post(url, {"records": rows}, format="json"), 413)
    assert body["code"] == "too_many_rows"
    assert "at most 1000 rows" in body["detail"]
    assert Record.objects.filter(table=orders).count() == 0

    created = ok(admin.post(url, {"records": rows[:1000]}, format="json"), 201)
    updates = [{"id": r["id"], "data": {"status": "paid"}} for r in created] * 2
    body = ok(admin.patch(url, {"records": updates}, format="json"), 413)
    assert body["code"] == "too_many_rows"
    assert not Record.objects.filter(table=orders, data__status="paid").exists()


def test_the_row_cap_comes_from_settings(admin: APIClient, orders: Table, settings: Any):
    settings.QUAYMASTER_BULK_MAX_ROWS = 2
    url = f"{API}/tables/orders/records/bulk"
    rows = [{"number": f"S-{i}"} for i in range(3)]
    assert ok(admin.post(url, {"records": rows}, format="json"), 413)["code"] == "too_many_rows"
    assert Record.objects.filter(table=orders).count() == 0
    ok(admin.post(url, {"records": rows[:2]}, format="json"), 201)


def _seed(admin: APIClient, count: int) -> None:
    rows = [
        {"number": f"N-{i:02d}", "total": str(i * 3 % 7), "status": ["new", "paid", "sent"][i % 3]}
        for i in range(count)
    ]
    rows.append({"number": "N-XX", "notes": "fragile parcel, handle with care"})
    ok(admin.post(f"{API}/tables/orders/records/bulk", {"records": rows}, format="json"), 201)


def test_query_sort_and_cursor_pagination_walk_every_record_once(admin: APIClient, orders: Table):
    _seed(admin, 10)
    seen: list[str] = []
    cursor = ""
    while True:
        page = ok(
            admin.get(
                f"{API}/tables/orders/records/",
                {"sort": "-total,number", "page_size": 3, "cursor": cursor},
            )
        )
        assert page["total"] == 11
        seen += [r["data"]["number"] for r in page["results"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    ordered = sorted(
        Record.objects.filter(table=orders),
        key=lambda r: (
            r.data.get("total") is None,
            -float(r.data.get("total") or 0),
            r.data["number"],
        ),
    )
    assert seen == [r.data["number"] for r in ordered], "absent totals sort last"

    body = ok(
        admin.post(
            f"{API}/tables/orders/records/query",
            {"query": {"status": "paid", "total": {"$gte": "3"}}, "sort": "number"},
            format="json",
        )
    )
    expected = sorted(
        r.data["number"]
        for r in Record.objects.filter(table=orders)
        if r.data.get("status") == "paid" and float(r.data.get("total") or -1) >= 3
    )
    assert [r["data"]["number"] for r in body["results"]] == expected
    assert body["total"] == len(expected)


def test_a_bad_query_is_400_naming_the_path(admin: APIClient, orders: Table):
    body = ok(
        admin.post(
            f"{API}/tables/orders/records/query",
            {"query": {"$and": [{"status": "new"}, {"total": {"$bogus": 1}}]}},
            format="json",
        ),
        400,
    )
    assert body["code"] == "invalid_query"
    assert body["path"] == "$and[1].total.$bogus"
    body = ok(admin.get(f"{API}/tables/orders/records/", {"query": "{not json"}), 400)
    assert body["code"] == "invalid_query"
    body = ok(admin.get(f"{API}/tables/orders/records/", {"query": '{"nope": 1}'}), 400)
    assert body["code"] == "invalid_query"
    assert "nope" in body["detail"]


def test_an_oversized_query_is_400_naming_the_path(admin: APIClient, orders: Table):
    deep: dict[str, Any] = {"status": "new"}
    for _ in range(100):
        deep = {"$not": deep}
    url = f"{API}/tables/orders/records/query"
    body = ok(admin.post(url, {"query": deep}, format="json"), 400)
    assert body["code"] == "invalid_query"
    assert body["path"] == ".".join(["$not"] * 33)
    body = ok(admin.post(url, {"query": {"number": {"$in": ["N"] * 2_000}}}, format="json"), 400)
    assert (body["code"], body["path"]) == ("invalid_query", "number.$in")
    # Too deep for the JSON decoder itself: still a 400, not a RecursionError.
    text = '{"$not": ' * 100_000 + '{"status": "new"}' + "}" * 100_000
    body = ok(admin.get(f"{API}/tables/orders/records/", {"query": text}), 400)
    assert body["code"] == "invalid_query"


@pytest.mark.postgres
def test_a_read_that_runs_past_the_statement_timeout_is_503(
    admin: APIClient, orders: Table, settings: Any, monkeypatch: pytest.MonkeyPatch
):
    from django.db import connection

    from zstorage import reads

    def slow_page(*args: Any, **kwargs: Any) -> Any:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(2)")
        return page(*args, **kwargs)

    page = reads.cursor_page
    settings.QUAYMASTER_API_STATEMENT_TIMEOUT_MS = 100
    monkeypatch.setattr(reads, "cursor_page", slow_page)
    body = ok(admin.get(f"{API}/tables/orders/records/"), 503)
    assert body["code"] == "query_timeout"
    settings.QUAYMASTER_API_STATEMENT_TIMEOUT_MS = 0
    monkeypatch.setattr(reads, "cursor_page", page)
    assert ok(admin.get(f"{API}/tables/orders/records/"))["total"] == 0


def test_search_finds_words_in_text_fields(admin: APIClient, orders: Table):
    _seed(admin, 3)
    body = ok(admin.get(f"{API}/tables/orders/records/", {"search": "fragile care"}))
    assert [r["data"]["number"] for r in body["results"]] == ["N-XX"]
    assert ok(admin.get(f"{API}/tables/orders/records/", {"search": "absent-word"}))["total"] == 0


def test_aggregate_groups_by_a_field(admin: APIClient, orders: Table):
    _seed(admin, 6)
    body = ok(
        admin.post(
            f"{API}/tables/orders/records/aggregate",
            {"function": "sum", "field": "total", "group_by": "status"},
            format="json",
        )
    )
    sums: dict[Any, float] = {}
    counts: dict[Any, int] = {}
    for r in Record.objects.filter(table=orders):
        if r.data.get("total") is not None:
            sums[r.data.get("status")] = sums.get(r.data.get("status"), 0) + float(r.data["total"])
        counts[r.data.get("status")] = counts.get(r.data.get("status"), 0) + 1
    got = {row["group"]: float(row["value"]) for row in body["results"] if row["value"] is not None}
    assert got == sums
    body = ok(
        admin.post(
            f"{API}/tables/orders/records/aggregate",
            {"function": "count", "group_by": "status"},
            format="json",
        )
    )
    assert {row["group"]: row["value"] for row in body["results"]} == counts
    body = ok(
        admin.post(
            f"{API}/tables/orders/records/aggregate",
            {"function": "avg", "field": "status"},
            format="json",
        ),
        400,
    )
    assert body["code"] == "invalid_request"


def test_children_lists_records_that_reference_a_record(admin: APIClient, orders: Table):
    ada = ok(admin.post(f"{API}/tables/customers/records/", {"name": "Ada"}, format="json"), 201)
    bob = ok(admin.post(f"{API}/tables/customers/records/", {"name": "Bob"}, format="json"), 201)
    for number, who in [("C-1", ada), ("C-2", ada), ("C-3", bob)]:
        ok(
            admin.post(
                f"{API}/tables/orders/records/",
                {"number": number, "customer": who["id"]},
                format="json",
            ),
            201,
        )
    body = ok(admin.get(f"{API}/tables/customers/records/{ada['id']}/children"))
    [group] = body["results"]
    assert (group["table"], group["field"], group["total"]) == ("orders", "customer", 2)
    assert sorted(r["data"]["number"] for r in group["records"]) == ["C-1", "C-2"]
    refused = ok(admin.delete(f"{API}/tables/customers/records/{ada['id']}/"), 409)
    assert refused["code"] == "record_referenced"


def test_business_users_see_only_what_they_were_granted(admin: APIClient, orders: Table):
    ok(admin.post(f"{API}/tables/orders/records/", {"number": "P-1"}, format="json"), 201)
    stranger = business_client()
    assert ok(stranger.get(f"{API}/tables/")) == []
    assert ok(stranger.get(f"{API}/tables/orders/records/"), 404)["code"] == "not_found"

    viewer = business_client(orders, can_view=True)
    assert [t["slug"] for t in ok(viewer.get(f"{API}/tables/"))] == ["orders"]
    assert ok(viewer.get(f"{API}/tables/orders/records/"))["total"] == 1
    assert (
        ok(viewer.post(f"{API}/tables/orders/records/", {"number": "P-2"}, format="json"), 403)[
            "code"
        ]
        == "permission_denied"
    )
    assert ok(
        viewer.post(
            f"{API}/tables/orders/fields/", {"name": "X", "key": "x", "type": "text"}, format="json"
        ),
        403,
    )
    ok(viewer.get(f"{API}/tables/customers/records/"), 404)

    clerk = business_client(orders, can_view=True, can_add=True, can_change=True)
    created = ok(clerk.post(f"{API}/tables/orders/records/", {"number": "P-2"}, format="json"), 201)
    ok(
        clerk.patch(
            f"{API}/tables/orders/records/{created['id']}/", {"status": "paid"}, format="json"
        )
    )
    ok(clerk.delete(f"{API}/tables/orders/records/{created['id']}/"), 403)


def test_the_api_needs_credentials_and_is_described_by_openapi(admin: APIClient, orders: Table):
    anonymous = APIClient()
    assert ok(anonymous.get(f"{API}/tables/"), 401)["code"] == "not_authenticated"
    schema = admin.get("/api/schema/", {"format": "json"})
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/zstorage/tables/{slug}/records/" in paths
    assert "/api/v1/zstorage/tables/{slug}/records/query" in paths


def _cursor(values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


@pytest.mark.parametrize("page_size", ["abc", " ", "1.5", "-1", "0", "501", "9" * 40, "²"])
def test_a_page_size_that_is_not_1_to_500_is_400(admin: APIClient, orders: Table, page_size: str):
    body = ok(admin.get(f"{API}/tables/orders/records/", {"page_size": page_size}), 400)
    assert body["code"] == "invalid_page_size"
    assert "1 to 500" in body["detail"]


@pytest.mark.parametrize("sort", ["", "-total,number", "created_at", "-updated_at,id"])
@pytest.mark.parametrize(
    "cursor",
    [
        "!!!",
        "a",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        _cursor({"a": 1}),
        _cursor([]),
        _cursor([None] * 5),
        _cursor(["x"] * 5),
        _cursor([[1]] * 5),
        _cursor([{"a": 1}] * 5),
        _cursor([True] * 5),
        _cursor([1.5] * 5),
        _cursor([10**30] * 5),
        _cursor([-(10**30)] * 5),
        _cursor(["1e999999"] * 5),
        _cursor(["NaN"] * 5),
        _cursor(["a\u0000b"] * 5),
        _cursor(["2026-13-45T99:99:99"] * 5),
        _cursor([None, None]),
        _cursor(["x", "x"]),
        _cursor([10**30, 10**30]),
        _cursor([None]),
        _cursor(["x"]),
        _cursor([10**30]),
        _cursor([1.5]),
    ],
)
def test_a_malformed_cursor_is_400(admin: APIClient, orders: Table, sort: str, cursor: str):
    _seed(admin, 3)
    response = admin.get(f"{API}/tables/orders/records/", {"sort": sort, "cursor": cursor})
    body = ok(response, 400)
    assert body["code"] == "invalid_cursor"
    posted = admin.post(
        f"{API}/tables/orders/records/query", {"sort": sort, "cursor": cursor}, format="json"
    )
    assert ok(posted, 400)["code"] == "invalid_cursor"


def test_field_options_null_or_not_an_object_is_400_and_changes_nothing(
    admin: APIClient, orders: Table
):
    """``options: null`` is refused (not taken as ``{}``): the column cannot hold it."""
    fields = f"{API}/tables/orders/fields/"
    created = ok(
        admin.post(
            fields, {"name": "X", "key": "x", "type": "text", "options": None}, format="json"
        ),
        400,
    )
    assert (created["code"], list(created["fields"])) == ("invalid", ["options"])
    for options in ([1], "abc", 5):
        body = {"name": "X", "key": "x", "type": "choice", "options": options}
        refused = ok(admin.post(fields, body, format="json"), 400)
        assert (refused["code"], list(refused["fields"])) == ("invalid_schema", ["options"])
    assert not orders.fields.filter(key="x").exists()

    for options in (None, ["new"]):
        changed = ok(admin.patch(f"{fields}status/", {"options": options}, format="json"), 400)
        assert list(changed["fields"]) == ["options"]
    assert orders.fields.get(key="status").options == {"choices": ["new", "paid", "sent"]}


@pytest.mark.parametrize(
    ("method", "path", "body", "code"),
    [
        (
            "post",
            "fields/",
            {"name": "C", "key": "c", "type": "choice", "options": {"choices": ["a\x00"]}},
            "invalid_schema",
        ),
        (
            "post",
            "fields/",
            {"name": "C", "key": "c", "type": "text", "options": {"a\x00": 1}},
            "invalid_schema",
        ),
        (
            "post",
            "fields/",
            {"name": "C", "key": "c", "type": "text", "default": "a\x00"},
            "invalid_schema",
        ),
        (
            "post",
            "fields/",
            {"name": "C", "key": "c", "type": "integer", "default": 10**40},
            "invalid_schema",
        ),
        (
            "post",
            "rules/",
            {"kind": "regex", "field": "number", "params": {"pattern": "a\x00"}, "message": "m"},
            "invalid_schema",
        ),
        (
            "post",
            "rules/",
            {"kind": "regex", "field": "number", "params": [1], "message": "m"},
            "invalid_schema",
        ),
        ("post", "records/", {"number": "N-1", "notes": "a\x00b"}, "invalid_record"),
        ("post", "records/", {"number": "N-1", "customer": 10**30}, "invalid_record"),
        ("post", "records/", {"number": "N-1", "customer": "9" * 5000}, "invalid_record"),
        ("post", "records/bulk", {"records": [{"number": "N-1\x00"}]}, "invalid_bulk"),
        ("post", "records/query", {"query": {"total": {"$gt": "1e999999"}}}, "invalid_query"),
        ("post", "records/query", {"query": {"total": {"$in": ["-1e-999999"]}}}, "invalid_query"),
    ],
)
def test_odd_values_are_400_and_write_nothing(
    admin: APIClient, orders: Table, method: str, path: str, body: Any, code: str
):
    """What a fuzzer sends (NUL, which PostgreSQL's jsonb cannot hold; numbers beyond the
    columns): a 400 with a stable code on every engine, never a 500."""
    before = (orders.fields.count(), orders.rules.count(), Record.objects.count())
    response = getattr(admin, method)(f"{API}/tables/orders/{path}", body, format="json")
    assert ok(response, 400)["code"] == code
    assert (orders.fields.count(), orders.rules.count(), Record.objects.count()) == before


def test_odd_versions_and_searches_are_ignored_not_500(admin: APIClient, orders: Table):
    _seed(admin, 2)
    record = Record.objects.filter(table=orders).first()
    assert record is not None
    url = f"{API}/tables/orders/records/{record.pk}/"
    for if_match in ["²", "9" * 5000]:
        ok(admin.patch(url, {"notes": "x"}, format="json", HTTP_IF_MATCH=if_match))
    stale = ok(admin.patch(url, {"notes": "y"}, format="json", HTTP_IF_MATCH="9" * 18), 409)
    assert stale["code"] == "version_conflict"
    assert ok(admin.get(f"{API}/tables/orders/records/", {"search": "fragile\x00"}))["total"] == 1
    ok(admin.delete(f"{url}?version={'9' * 5000}"), 204)


def test_a_table_s_display_field_is_set_and_checked_over_the_api(admin: APIClient):
    table = make_table("people")
    make_field(table, "name")
    make_field(table, "age", "integer")
    url = f"/api/v1/zstorage/tables/{table.slug}/"
    refused = admin.patch(url, {"display_field": "age"}, format="json")
    assert refused.status_code == 400
    assert "display_field" in refused.json()["fields"]
    assert admin.patch(url, {"display_field": "name"}, format="json").json()["display_field"] == (
        "name"
    )
    created = admin.post(
        "/api/v1/zstorage/tables/",
        {"name": "New", "slug": "new", "display_field": "name"},
        format="json",
    )
    assert created.status_code == 400
    assert not Table.objects.filter(slug="new").exists()
