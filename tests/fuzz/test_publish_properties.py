"""Property: any JSON sent to the publish endpoints (one message, or a batch) is either
published (201) or refused with a 400 whose ``path`` names the spot; never another answer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from queues.models import DatabaseMessage
from tests.fuzz.strategies import examples, json_objects, json_values
from tests.fuzz.world import QUEUE, World, build

KEYS = ["handler", "messages", "payload", "to", "n"]
handlers = st.one_of(st.sampled_from(["log", " ", ""]), json_values(KEYS))
messages = st.one_of(
    st.builds(
        lambda rest, h: {**rest, "handler": h},
        json_objects(KEYS).filter(lambda v: isinstance(v, dict)),
        handlers,
    ),
    json_objects(KEYS),
)
batches = st.one_of(
    st.builds(lambda m: {"messages": m}, st.lists(messages, max_size=4)),
    st.builds(lambda m: {"messages": m}, json_values(KEYS)),
    json_objects(KEYS),
)
#: Refusals of the body's shape, each naming the spot; ``parse_error`` names the whole body
#: ("$": NaN or Infinity, which Python writes but JSON has not).
CODES = {"not_an_object", "missing_handler", "invalid_batch", "parse_error", "unknown_handler"}
#: The engine's refusal of a value it cannot carry (the database queue: a NUL character).
ENGINE = {"bad_message"}


@pytest.fixture
def publisher(db: None) -> tuple[World, APIClient]:
    """The business user of the fuzz world: may publish, to every queue."""
    world = build()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.business_token}")
    return world, client


def _post(client: APIClient, url: str, body: Any) -> Any:
    return client.post(url, json.dumps(body), content_type="application/json")


def _published_or_path(response: Any) -> bool:
    if response.status_code == 201:
        return True
    assert response.status_code == 400, (response.status_code, response.content[:500])
    body = response.json()
    if body["code"] in ENGINE:
        return False
    assert body["code"] in CODES, body
    assert isinstance(body.get("path"), str), body
    assert body["path"], body
    return False


FUZZ = settings(
    max_examples=examples(60),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.mark.django_db
@FUZZ
@given(body=messages)
def test_a_published_body_is_accepted_or_refused_with_its_path(
    publisher: tuple[World, APIClient], body: Any
) -> None:
    world, client = publisher
    before = DatabaseMessage.objects.count()
    by_id = _post(client, f"/api/v1/zstorage/queue/{world.known['id']}/publish", body)
    by_name = _post(client, f"/api/v1/zstorage/queue/a/{QUEUE}/publish", body)
    published = _published_or_path(by_id)
    assert _published_or_path(by_name) == published
    assert DatabaseMessage.objects.count() == before + (2 if published else 0)


@pytest.mark.django_db
@FUZZ
@given(body=batches)
def test_a_batch_is_published_whole_or_refused_with_its_path(
    publisher: tuple[World, APIClient], body: Any
) -> None:
    world, client = publisher
    before = DatabaseMessage.objects.count()
    answer = _post(client, f"/api/v1/zstorage/queue/{world.known['id']}/publish/batch", body)
    if _published_or_path(answer):
        assert DatabaseMessage.objects.count() == before + len(body["messages"])
    else:
        assert DatabaseMessage.objects.count() == before
