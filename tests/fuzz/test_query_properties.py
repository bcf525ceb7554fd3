"""Property: any JSON given as a query (to the parser, and to the record API's three ways of
taking one) is either accepted or refused with ``invalid_query`` and a ``path`` naming the
spot; never another exception, never a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from tests.fuzz.strategies import OPERATORS, examples, json_objects, json_values
from tests.fuzz.world import TABLE, build
from zstorage.errors import QueryError
from zstorage.models import Record
from zstorage.query import FieldSpec, compile_query

SPECS = [
    FieldSpec("title", "text"),
    FieldSpec("notes", "long_text"),
    FieldSpec("count", "integer"),
    FieldSpec("total", "decimal"),
    FieldSpec("paid", "boolean"),
    FieldSpec("due", "date"),
    FieldSpec("at", "datetime"),
    FieldSpec("email", "email"),
    FieldSpec("site", "url"),
    FieldSpec("status", "choice", {"choices": ["open", "closed"]}),
    FieldSpec("tags", "multi_choice", {"choices": ["a", "b"]}),
    FieldSpec("extra", "json"),
    FieldSpec("buyer", "reference", {"table": "fuzz-people"}),
]
KEYS = [spec.key for spec in SPECS] + ["id", *OPERATORS]
queries = json_objects(KEYS)
records = st.dictionaries(st.sampled_from([s.key for s in SPECS]), json_values(KEYS), max_size=6)


def _refused_with_path(error: QueryError) -> None:
    assert error.code == "invalid_query"
    assert isinstance(error.path, str)
    assert error.path
    assert error.detail


@pytest.mark.django_db
@settings(max_examples=examples(300), deadline=None, derandomize=True)
@given(query=queries, data=records, record_id=st.none() | st.integers(1, 10))
def test_the_parser_accepts_or_names_the_spot(query: Any, data: Any, record_id: Any) -> None:
    try:
        compiled = compile_query(query, SPECS)
    except QueryError as error:
        _refused_with_path(error)
        return
    # What was accepted runs in memory on any stored shape, and in the database.
    assert compiled.matches(data, record_id) in (True, False)
    assert Record.objects.filter(compiled.to_q()).count() >= 0


@pytest.fixture
def clerk() -> APIClient:
    """The business user of the fuzz world, with view rights on its table."""
    world = build()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.business_token}")
    return client


def _accepted_or_path(response: Any) -> None:
    assert response.status_code in (200, 400), (response.status_code, response.content[:500])
    if response.status_code == 400:
        body = response.json()
        assert body["code"] == "invalid_query", body
        assert isinstance(body.get("path"), str), body
        assert body["path"], body


URL = f"/api/v1/zstorage/tables/{TABLE}/records/"


@pytest.mark.django_db
@settings(
    max_examples=examples(60),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(query=queries)
def test_the_record_api_accepts_a_query_or_names_the_spot(clerk: APIClient, query: Any) -> None:
    as_text = json.dumps(query)  # NaN and Infinity as Python writes them: its decoder reads them
    _accepted_or_path(clerk.get(URL, {"query": as_text}))
    finite = not any(word in as_text for word in ("NaN", "Infinity"))
    if finite:
        _accepted_or_path(clerk.post(f"{URL}query", {"query": query}, format="json"))
        aggregate = {"function": "count", "query": query}
        _accepted_or_path(clerk.post(f"{URL}aggregate", aggregate, format="json"))


def test_a_query_parameter_that_is_not_json_names_the_whole_query(db: None) -> None:
    world = build()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.business_token}")
    answer = client.get(URL, {"query": '{"title": '})
    assert answer.status_code == 400
    assert answer.json()["path"] == "$"
