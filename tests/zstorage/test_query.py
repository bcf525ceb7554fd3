"""The query language, operator by operator: every case runs both in memory and in the
database, and must select the same records there as here."""

from __future__ import annotations

from typing import Any

import pytest

from zstorage.errors import QueryError, ZStorageError
from zstorage.models import Field, Record, Table
from zstorage.query import FieldSpec, Query, compile_query

pytestmark = pytest.mark.django_db

FIELDS = {
    "label": "text",
    "name": "text",
    "email": "email",
    "status": "choice",
    "qty": "integer",
    "total": "decimal",
    "paid": "boolean",
    "day": "date",
    "at": "datetime",
    "tags": "multi_choice",
    "meta": "json",
    "customer": "reference",
}

# Records by label; a key left out is absent, None is stored as JSON null.
ROWS: dict[str, dict[str, Any]] = {
    "a": {
        "name": "Apple pie",
        "email": "ann@example.com",
        "status": "paid",
        "qty": 3,
        "total": "9.50",
        "paid": True,
        "day": "2024-05-01",
        "at": "2024-05-01T10:00:00.000000Z",
        "tags": ["red", "green"],
        "meta": {"x": 1},
        "customer": "c1",
    },
    "b": {
        "name": "banana split",
        "email": "bob@example.org",
        "status": "open",
        "qty": 10,
        "total": "10.25",
        "paid": False,
        "day": "2024-04-30",
        "at": "2024-05-01T09:59:59.999999Z",
        "tags": ["green"],
        "meta": 1,
        "customer": "c2",
    },
    "c": {
        "name": None,
        "status": "open",
        "qty": None,
        "tags": [],
        "meta": "1",
        "day": None,
    },
    "d": {
        "name": "ÄPFEL and Bananas",
        "qty": -5,
        "total": "-1.00",
        "paid": True,
        "at": "2023-12-31T23:00:00.000000Z",
        "tags": ["green", "red"],
        "meta": True,
        "customer": "c1",
    },
}


@pytest.fixture
def table() -> Table:
    customers = Table.objects.create(name="Customers", slug="customers")
    c1 = Record.objects.create(table=customers, data={})
    c2 = Record.objects.create(table=customers, data={})
    refs = {"c1": c1.pk, "c2": c2.pk}
    orders = Table.objects.create(name="Orders", slug="orders")
    for order, (key, type_) in enumerate(FIELDS.items()):
        options: dict[str, Any] = {}
        if type_ in ("choice", "multi_choice"):
            options["choices"] = ["paid", "open"] if type_ == "choice" else ["red", "green"]
        if type_ == "reference":
            options["table"] = "customers"
        Field.objects.create(
            table=orders, name=key, key=key, type=type_, order=order, options=options
        )
    for label, row in ROWS.items():
        data = {**row, "label": label}
        if "customer" in data:
            data["customer"] = refs[data["customer"]]
        Record.objects.create(table=orders, data=data)
    return orders


def select(table: Table, query: object) -> set[str]:
    """The labels the query selects, after checking memory and database agree."""
    compiled = compile_query(query, table.fields.all())
    records = list(Record.objects.filter(table=table))
    in_memory = {r.data["label"] for r in records if compiled.matches(r.data, record_id=r.pk)}
    in_db = {r.data["label"] for r in Record.objects.filter(table=table).filter(compiled.to_q())}
    assert in_db == in_memory, f"database {sorted(in_db)} != memory {sorted(in_memory)}"
    return in_db


CASES: list[tuple[object, set[str]]] = [
    ({}, {"a", "b", "c", "d"}),
    # $eq, implicit and explicit; $ne keeps absent values (Mongo semantics).
    ({"status": "open"}, {"b", "c"}),
    ({"status": {"$eq": "paid"}}, {"a"}),
    ({"status": {"$ne": "paid"}}, {"b", "c", "d"}),
    ({"name": {"$ne": "Apple pie"}}, {"b", "c", "d"}),
    # $exists: null is absent.
    ({"name": {"$exists": True}}, {"a", "b", "d"}),
    ({"name": {"$exists": False}}, {"c"}),
    ({"total": {"$exists": False}}, {"c"}),
    ({"qty": {"$exists": True}}, {"a", "b", "d"}),
    # Integers compare numerically; absent values never compare.
    ({"qty": {"$gt": 3}}, {"b"}),
    ({"qty": {"$gte": 3}}, {"a", "b"}),
    ({"qty": {"$lt": 3}}, {"d"}),
    ({"qty": {"$lte": 3, "$gt": -5}}, {"a"}),
    ({"qty": {"$not": {"$gt": 0}}}, {"c", "d"}),
    ({"qty": {"$in": [3, 10]}}, {"a", "b"}),
    ({"qty": {"$nin": [3, 10]}}, {"c", "d"}),
    ({"qty": {"$in": []}}, set()),
    ({"qty": {"$nin": []}}, {"a", "b", "c", "d"}),
    # Decimals are strings compared as numbers: "9.50" < "10.25" although "9" > "1".
    ({"total": {"$lt": "10"}}, {"a", "d"}),
    ({"total": {"$gt": 9.5}}, {"b"}),
    ({"total": 9.5}, {"a"}),
    ({"total": "-1"}, {"d"}),
    ({"total": {"$gte": -1, "$lte": "9.5"}}, {"a", "d"}),
    ({"total": {"$in": ["10.250", 1]}}, {"b"}),
    # Text order is code point order: "Ä" (U+00C4) sorts after every ASCII letter.
    ({"name": {"$gt": "Z"}}, {"b", "d"}),
    ({"name": {"$lt": "a"}}, {"a"}),
    ({"name": {"$gte": "banana split"}}, {"b", "d"}),
    ({"name": {"$contains": "an"}}, {"b", "d"}),
    ({"name": {"$contains": "AN"}}, set()),
    ({"name": {"$icontains": "AN"}}, {"b", "d"}),
    ({"name": {"$icontains": "äpfel"}}, set()),  # only A-Z fold
    ({"name": {"$icontains": "Äpfel"}}, {"d"}),
    ({"name": {"$startswith": "Apple"}}, {"a"}),
    ({"name": {"$startswith": "apple"}}, set()),
    ({"name": {"$startswith": ""}}, {"a", "b", "d"}),
    ({"email": {"$contains": ".org"}}, {"b"}),
    # Booleans: true is not 1, absent is neither true nor false.
    ({"paid": True}, {"a", "d"}),
    ({"paid": False}, {"b"}),
    ({"paid": {"$ne": True}}, {"b", "c"}),
    ({"paid": {"$in": [True, False]}}, {"a", "b", "d"}),
    # Dates and datetimes: normalised to the stored canonical form, compared as time.
    ({"day": {"$lt": "2024-05-01"}}, {"b"}),
    ({"day": "2024-05-01"}, {"a"}),
    ({"at": {"$gte": "2024-05-01T10:00:00Z"}}, {"a"}),
    ({"at": {"$gte": "2024-05-01T12:00:00+02:00"}}, {"a"}),
    ({"at": "2024-05-01T09:59:59.999999Z"}, {"b"}),
    ({"at": {"$lte": "2024-01-01T00:00:00+01:00"}}, {"d"}),
    ({"at": {"$lt": "2024-01-01T00:00:00+01:00"}}, set()),
    ({"at": {"$gt": "2024-01-01T00:00:00+01:00"}}, {"a", "b"}),
    # Multi-choice: $contains one choice; $eq the same set in any order.
    ({"tags": {"$contains": "red"}}, {"a", "d"}),
    ({"tags": {"$contains": "green"}}, {"a", "b", "d"}),
    ({"tags": ["green", "red"]}, {"a", "d"}),
    ({"tags": ["green"]}, {"b"}),
    ({"tags": []}, {"c"}),
    ({"tags": {"$ne": ["green"]}}, {"a", "c", "d"}),
    ({"tags": {"$not": {"$contains": "red"}}}, {"b", "c"}),
    # JSON: scalars of the same JSON type and value.
    ({"meta": 1}, {"b"}),
    ({"meta": 1.0}, {"b"}),
    ({"meta": "1"}, {"c"}),
    ({"meta": True}, {"d"}),
    ({"meta": {"$ne": 1}}, {"a", "c", "d"}),
    ({"meta": {"$exists": True}}, {"a", "b", "c", "d"}),
    # Combinations.
    ({"$and": [{"status": "open"}, {"qty": {"$gt": 1}}]}, {"b"}),
    ({"$or": [{"status": "paid"}, {"qty": {"$lt": 0}}]}, {"a", "d"}),
    ({"$not": {"status": "open"}}, {"a", "d"}),
    ({"$not": {"qty": {"$gt": 0}}}, {"c", "d"}),
    ({"$not": {}}, set()),
    ({"$or": [{}, {"qty": 3}]}, {"a", "b", "c", "d"}),
    ({"$not": {"$or": [{"qty": 3}, {}]}}, set()),
    ({"$not": {"$not": {"qty": {"$gt": 0}}}}, {"a", "b"}),
    (
        {"$or": [{"$and": [{"paid": True}, {"qty": {"$gt": 0}}]}, {"$not": {"tags": []}}]},
        {"a", "b", "d"},
    ),
    ({"$and": [{"$or": [{"qty": 3}, {"qty": 10}]}, {"$not": {"paid": False}}]}, {"a"}),
    ({"status": "open", "$or": [{"name": {"$exists": False}}, {"paid": True}]}, {"c"}),
]


@pytest.mark.parametrize(("query", "expected"), CASES, ids=[str(q) for q, _ in CASES])
def test_each_operator_selects_the_same_records_in_memory_and_in_the_database(
    table: Table, query: object, expected: set[str]
):
    assert select(table, query) == expected


def test_references_compare_as_record_ids(table: Table):
    c1, c2 = Record.objects.filter(table__slug="customers").values_list("pk", flat=True)
    assert select(table, {"customer": c1}) == {"a", "d"}
    assert select(table, {"customer": {"$in": [c2]}}) == {"b"}
    assert select(table, {"customer": {"$ne": c1}}) == {"b", "c"}
    assert select(table, {"customer": {"$gt": c1}}) == {"b"}


def test_id_is_the_record_id(table: Table):
    ids = {r.data["label"]: r.pk for r in Record.objects.filter(table=table)}
    assert select(table, {"id": ids["b"]}) == {"b"}
    assert select(table, {"id": {"$gt": ids["b"]}}) == {"c", "d"}
    assert select(table, {"id": {"$nin": [ids["a"], ids["d"]]}}) == {"b", "c"}
    assert select(table, {"$not": {"id": {"$lte": ids["c"]}}}) == {"d"}


def test_an_unsaved_record_has_no_id():
    query = compile_query({"id": {"$gt": 0}}, {})
    assert not query.matches({})
    assert query.matches({}, record_id=1)
    assert compile_query({"id": {"$ne": 1}}, {}).matches({})


def test_field_specs_and_plain_data_need_no_database():
    specs = [FieldSpec("total", "decimal"), FieldSpec("status", "choice", {"choices": ["x"]})]
    query: Query = compile_query({"total": {"$gt": 10}, "status": {"$ne": "x"}}, specs)
    assert query.matches({"total": "10.01"})
    assert not query.matches({"total": "10.00"})
    assert not query.matches({"total": "11", "status": "x"})
    assert query == compile_query({"total": {"$gt": 10}, "status": {"$ne": "x"}}, specs)


BAD: list[tuple[object, str, str]] = [
    ([], "$", "JSON object"),
    ("status", "$", "JSON object"),
    ({"nope": 1}, "nope", "unknown field"),
    ({"$nor": []}, "$nor", "unknown operator"),
    ({"qty": {"$bogus": 1}}, "qty.$bogus", "unknown operator"),
    ({"$and": [{"status": "open"}, {"total": {"$gt": "x"}}]}, "$and[1].total.$gt", "not a number"),
    ({"$and": [{"status": "open"}, {"qty": {"$gt": "5"}}]}, "$and[1].qty.$gt", "whole number"),
    ({"qty": 1.5}, "qty", "whole number"),
    ({"qty": True}, "qty", "whole number"),
    ({"qty": 2**63}, "qty", "out of range"),
    ({"qty": {"$in": 3}}, "qty.$in", "list"),
    ({"qty": {"$nin": [1, "2"]}}, "qty.$nin[1]", "whole number"),
    ({"qty": {"$exists": 1}}, "qty.$exists", "true or false"),
    ({"qty": {"$contains": "1"}}, "qty.$contains", "does not apply"),
    ({"qty": {}}, "qty", "at least one operator"),
    ({"qty": None}, "qty", "$exists"),
    ({"qty": {"$not": 3}}, "qty.$not", "object of operators"),
    ({"qty": {"$not": {"$gt": "3"}}}, "qty.$not.$gt", "whole number"),
    ({"$and": []}, "$and", "at least one"),
    ({"$or": {}}, "$or", "list"),
    ({"$or": [{"qty": 1}, 3]}, "$or[1]", "JSON object"),
    ({"$not": {"$or": [{"total": {"$lt": True}}]}}, "$not.$or[0].total.$lt", "number"),
    ({"$not": []}, "$not", "JSON object"),
    ({"total": "NaN"}, "total", "finite"),
    ({"total": float("inf")}, "total", "finite"),
    ({"name": {"$gt": 5}}, "name.$gt", "text"),
    ({"name": {"$icontains": ["a"]}}, "name.$icontains", "text"),
    ({"name": "a\x00b"}, "name", "NUL"),
    ({"paid": "true"}, "paid", "true or false"),
    ({"paid": {"$gt": False}}, "paid.$gt", "does not apply"),
    ({"day": "tomorrow"}, "day", "YYYY-MM-DD"),
    ({"day": {"$startswith": "2024"}}, "day.$startswith", "does not apply"),
    ({"at": {"$in": ["2024-05-01T10:00:00Z", "noon"]}}, "at.$in[1]", "ISO 8601"),
    ({"tags": "red"}, "tags", "list of texts"),
    ({"tags": {"$contains": ["red"]}}, "tags.$contains", "text"),
    ({"tags": {"$in": ["red"]}}, "tags.$in", "does not apply"),
    ({"tags": ["red", 1]}, "tags", "list of texts"),
    ({"meta": {"x": 1}}, "meta.x", "unknown operator"),
    ({"meta": {"$eq": [1]}}, "meta.$eq", "number or a boolean"),
    ({"meta": {"$gt": 1}}, "meta.$gt", "does not apply"),
    ({"customer": "12"}, "customer", "whole number"),
    ({"id": "12"}, "id", "whole number"),
    ({"id": {"$contains": "1"}}, "id.$contains", "does not apply"),
]


@pytest.mark.parametrize(("query", "path", "detail"), BAD, ids=[str(q) for q, _, _ in BAD])
def test_bad_queries_raise_query_error_naming_the_exact_path(
    table: Table, query: object, path: str, detail: str
):
    with pytest.raises(QueryError) as caught:
        compile_query(query, table.fields.all())
    error = caught.value
    assert isinstance(error, ZStorageError)
    assert error.code == "invalid_query"
    assert error.path == path
    assert detail in error.detail
    assert str(error) == error.message == f"{path}: {error.detail}"


def _nested_not(depth: int) -> dict[str, Any]:
    query: dict[str, Any] = {"qty": 1}
    for _ in range(depth):
        query = {"$not": query}
    return query


def test_deep_nesting_is_a_query_error_not_a_recursion_error(table: Table):
    with pytest.raises(QueryError) as caught:
        compile_query(_nested_not(10_000), table.fields.all())
    assert "nests too deeply" in caught.value.detail
    assert caught.value.path == ".".join(["$not"] * 33)


def test_a_long_in_list_is_a_query_error_naming_the_list(table: Table):
    with pytest.raises(QueryError) as caught:
        compile_query({"qty": {"$in": list(range(2_000))}}, table.fields.all())
    assert caught.value.path == "qty.$in"
    assert "at most 1000 values" in caught.value.detail
    with pytest.raises(QueryError) as caught:
        compile_query({"$and": [{"qty": {"$nin": list(range(1_001))}}]}, table.fields.all())
    assert caught.value.path == "$and[0].qty.$nin"
    compile_query({"qty": {"$in": list(range(1_000))}}, table.fields.all())


def test_the_limits_come_from_settings(table: Table, settings: Any):
    fields = table.fields.all()
    settings.QUAYMASTER_QUERY_MAX_DEPTH = 3
    settings.QUAYMASTER_QUERY_MAX_NODES = 8
    settings.QUAYMASTER_QUERY_MAX_LIST = 2
    compile_query(_nested_not(2), fields)
    with pytest.raises(QueryError, match="nests too deeply") as caught:
        compile_query(_nested_not(3), fields)
    assert caught.value.path == "$not.$not.$not.qty"
    compile_query({"qty": {"$in": [1, 2]}}, fields)
    with pytest.raises(QueryError, match="at most 2 values") as caught:
        compile_query({"qty": {"$in": [1, 2, 3]}}, fields)
    with pytest.raises(QueryError, match="too large") as caught:
        compile_query(
            {"$or": [{"qty": {"$gt": 1, "$lt": 5}}, {"qty": {"$gt": 1, "$lt": 5}}]}, fields
        )
    assert caught.value.path == "$or[1].qty.$lt"
    with pytest.raises(QueryError, match="too large"):
        compile_query(
            {
                "qty": {"$gt": 1, "$gte": 2, "$lt": 5, "$ne": 3},
                "total": 1,
                "paid": True,
                "name": "x",
            },
            fields,
        )
