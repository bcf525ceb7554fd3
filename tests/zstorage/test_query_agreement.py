"""Property: for random records and random queries, the database filter and the in-memory
predicate select exactly the same records. Runs on whichever database DATABASE_URL selects
(the suite runs on PostgreSQL and on SQLite).

Values are drawn mostly from small pools shared by records and queries, so that equalities,
prefixes and ties actually happen, and sometimes from wide ranges (any Unicode text but NUL
and surrogates, 64-bit integers, far dates, mixed time zones) to reach the edges.
"""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st

from zstorage.fields.moments import canonical_datetime
from zstorage.models import Field, Record, Table
from zstorage.query import compile_query
from zstorage.query.nodes import OPERATORS

pytestmark = pytest.mark.django_db

EXAMPLES = 250

TYPES = {
    "t": "text",
    "c": "choice",
    "i": "integer",
    "r": "reference",
    "d": "decimal",
    "b": "boolean",
    "day": "date",
    "at": "datetime",
    "tags": "multi_choice",
    "j": "json",
}
CHOICES = ["x", "y", "z"]
SUBSTRING = ("$contains", "$icontains", "$startswith")

any_char = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
short_text = st.text(alphabet="aAbé\u00c9 ", max_size=3)
texts = st.one_of(short_text, short_text, st.text(any_char, max_size=6))
needles = st.text(alphabet="aAéÉ", max_size=2)  # short, so that substrings are found
ints = st.one_of(st.integers(-3, 3), st.integers(-(2**63), 2**63 - 1))
# Decimals as stored (plain-notation strings, at most 15 significant digits), or as numbers.
decimal_values = st.decimals(
    min_value=Decimal("-99999.99"), max_value=Decimal("99999.99"), places=2
).map(lambda d: format(d, "f"))
decimals = st.one_of(
    st.sampled_from(["9.5", "9.50", "10.25", "-0.00", "0", "-1.5", "100"]),
    decimal_values,
    st.integers(-100, 100),
    st.sampled_from([9.5, 0.1, -1.25]),
)
day_pool = [dt.date(2024, 5, d) for d in (1, 2, 3)]
days = st.one_of(st.sampled_from(day_pool), st.dates())
moment_pool = [
    dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.UTC),
    dt.datetime(2024, 5, 1, 10, 0, 0, 1, tzinfo=dt.UTC),
    dt.datetime(2024, 5, 1, 9, 59, 59, 999999, tzinfo=dt.UTC),
]
moments = st.one_of(
    st.sampled_from(moment_pool),
    st.datetimes(
        min_value=dt.datetime(1900, 1, 2),
        max_value=dt.datetime(9999, 12, 30),
        timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=2))]),
    ),
)
json_scalars = st.one_of(
    st.sampled_from([1, 1.0, "1", True, False, 0, "", 2.5]), st.integers(-5, 5), short_text
)
json_values = st.one_of(
    json_scalars, st.lists(json_scalars, max_size=2), st.dictionaries(short_text, json_scalars)
)

STORED: dict[str, st.SearchStrategy[Any]] = {
    "text": texts,
    "choice": st.sampled_from(CHOICES),
    "integer": ints,
    "reference": st.integers(1, 4),
    "decimal": decimals,
    "boolean": st.booleans(),
    "date": days.map(dt.date.isoformat),
    "datetime": moments.map(canonical_datetime),
    "multi_choice": st.lists(st.sampled_from(CHOICES), max_size=4),
    "json": json_values,
}

# Query operands: the same pools, in the forms a client would send.
OPERANDS: dict[str, st.SearchStrategy[Any]] = {
    **STORED,
    "choice": st.sampled_from([*CHOICES, "w"]),
    "decimal": st.one_of(decimals, decimal_values.map(Decimal)),
    "datetime": moments.map(lambda m: m.isoformat()),
    "multi_choice": st.lists(st.sampled_from(CHOICES), max_size=3),
    "json": json_scalars,
    "id": st.integers(-1, 12),
}


def stored_value(type_: str) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), STORED[type_])  # None: JSON null, i.e. absent


records = st.lists(
    st.fixed_dictionaries(
        {"t": stored_value("text")},
        optional={key: stored_value(type_) for key, type_ in TYPES.items() if key != "t"},
    ),
    min_size=2,
    max_size=12,
)


@st.composite
def conditions(draw: st.DrawFn, key: str) -> Any:
    """One field's condition, with every operator its type allows."""
    type_ = TYPES.get(key, key)
    operators = sorted(OPERATORS[type_] | {"$exists", "$not", "="})
    substring = [op for op in operators if op in SUBSTRING]
    op = draw(st.sampled_from(operators + substring * 2))
    operand = OPERANDS[type_]
    if type_ == "multi_choice" and op == "$contains":
        operand = st.sampled_from([*CHOICES, "w"])
    elif op in SUBSTRING:
        operand = st.one_of(needles, texts)
    if op == "=":
        return draw(operand)
    if op == "$exists":
        return {op: draw(st.booleans())}
    if op == "$not":
        inner = draw(conditions(key))
        return {op: inner if isinstance(inner, dict) else {"$eq": inner}}
    if op in ("$in", "$nin"):
        return {op: draw(st.lists(operand, max_size=3))}
    return {op: draw(operand)}


# Text fields have the most operators (and the collation and case traps): draw them more.
field_queries = st.sampled_from([*TYPES, "id", "t", "t", "t"]).flatmap(
    lambda key: conditions(key).map(lambda condition: {key: condition})
)
queries = st.recursive(
    st.one_of(field_queries, field_queries, field_queries, field_queries, st.just({})),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda qs: {"$and": qs}),
        st.lists(inner, min_size=1, max_size=3).map(lambda qs: {"$or": qs}),
        inner.map(lambda q: {"$not": q}),
    ),
    max_leaves=8,
)


@pytest.fixture
def table() -> Table:
    table = Table.objects.create(name="Generated", slug="generated")
    for key, type_ in TYPES.items():
        options = {"choices": CHOICES} if type_ in ("choice", "multi_choice") else {}
        Field.objects.create(table=table, name=key, key=key, type=type_, options=options)
    return table


RUNS: list[float] = []


# The traps found while writing the compilers, checked on every run besides the random ones.
@example(
    rows=[{"t": "É"}, {"t": "é"}, {"t": "Z"}, {"t": "a"}],
    batch=[{"t": {"$icontains": "é"}}, {"t": {"$icontains": "A"}}, {"t": {"$gt": "Z"}}],
)
@example(
    rows=[{"t": None, "j": None}, {}, {"t": "a", "j": True}, {"j": 1}],
    batch=[
        {"t": {"$ne": "a"}},
        {"$not": {"t": {"$gt": "a"}}},
        {"j": {"$exists": False}},
        {"j": 1},
        {"j": {"$ne": True}},
    ],
)
@example(
    rows=[{"d": "9.5"}, {"d": "10.25"}, {"d": 10}, {"tags": ["y", "x", "y"]}],
    batch=[{"d": {"$lt": "10"}}, {"d": 10}, {"tags": ["x", "y"]}, {"$not": {"$or": [{}]}}],
)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=records, batch=st.lists(queries, min_size=8, max_size=16))
def test_database_and_memory_select_the_same_records(
    table: Table, rows: list[dict[str, Any]], batch: list[Any]
):
    started = time.perf_counter()
    Record.objects.filter(table=table).delete()
    saved = Record.objects.bulk_create(Record(table=table, data=row) for row in rows)
    ids = {r.pk for r in saved} if all(r.pk for r in saved) else None
    stored = list(Record.objects.filter(table=table))
    assert ids is None or ids == {r.pk for r in stored}
    fields = list(table.fields.all())
    for query in batch:
        note(f"query: {query}")
        compiled = compile_query(query, fields)
        in_memory = {r.pk for r in stored if compiled.matches(r.data, record_id=r.pk)}
        in_db = set(
            Record.objects.filter(table=table).filter(compiled.to_q()).values_list("pk", flat=True)
        )
        wrong = {r.pk: r.data for r in stored if (r.pk in in_db) != (r.pk in in_memory)}
        assert in_db == in_memory, f"only in db: {in_db - in_memory}, rows: {wrong}"
    RUNS.append(time.perf_counter() - started)
