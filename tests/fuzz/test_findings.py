"""What the fuzz runs found, each now a 4xx with a stable code (and the spot, for a body)."""

from __future__ import annotations

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from queues.models import DatabaseMessage
from tests.fuzz.world import QUEUE, TABLE, World, build

RECORDS = f"/api/v1/zstorage/tables/{TABLE}/records/"
PUBLISH = "/api/v1/zstorage/queue/a/" + QUEUE + "/publish"
BEYOND_64_BITS = 2**70


@pytest.fixture
def world(db: None) -> World:
    return build()


def client_of(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_a_record_id_beyond_64_bits_is_no_record(world: World) -> None:
    clerk = client_of(world.business_token)
    url = f"{RECORDS}{BEYOND_64_BITS}/"

    changed = clerk.patch(url, {"title": "x"}, format="json")
    deleted = clerk.delete(url)
    read = clerk.get(url)

    for answer in (changed, deleted, read):
        assert answer.status_code == 404, answer.content
        assert answer.json()["code"] == "not_found"


def test_a_bulk_update_naming_an_id_beyond_64_bits_is_refused_and_changes_nothing(
    world: World,
) -> None:
    clerk = client_of(world.business_token)
    rows = [
        {"id": world.known["record_id"], "data": {"title": "changed"}},
        {"id": BEYOND_64_BITS, "data": {"title": "x"}, "version": BEYOND_64_BITS},
    ]

    answer = clerk.patch(f"{RECORDS}bulk", rows, format="json")

    assert answer.status_code == 400, answer.content
    body = answer.json()
    assert body["code"] == "invalid"
    assert set(body["fields"]["1"]) == {"id", "version"}
    record = clerk.get(f"{RECORDS}{world.known['record_id']}/").json()
    assert record["data"]["title"] == "first"


@pytest.mark.parametrize("endpoint", ["query", "aggregate"])
def test_a_null_query_is_refused_naming_the_whole_query(world: World, endpoint: str) -> None:
    clerk = client_of(world.business_token)

    answer = clerk.post(f"{RECORDS}{endpoint}", {"function": "count", "query": None}, format="json")

    assert answer.status_code == 400, answer.content
    assert answer.json()["code"] == "invalid_query"
    assert answer.json()["path"] == "$"


@pytest.mark.parametrize(
    ("url", "body", "code", "path"),
    [
        (PUBLISH, [1, 2], "not_an_object", "$"),
        (PUBLISH, {"to": "a@b.c"}, "missing_handler", "handler"),
        (PUBLISH, {"handler": "  "}, "missing_handler", "handler"),
        (f"{PUBLISH}/batch", {"messages": {}}, "not_an_object", "messages"),
        (f"{PUBLISH}/batch", {"messages": []}, "not_an_object", "messages"),
        (
            f"{PUBLISH}/batch",
            {"messages": [{"handler": "log"}, {"handler": 7}, "x"]},
            "invalid_batch",
            "messages[1].handler",
        ),
        (
            f"{PUBLISH}/batch",
            {"messages": [{"handler": "log"}, "x"]},
            "invalid_batch",
            "messages[1]",
        ),
    ],
)
def test_a_refused_message_names_the_spot_and_publishes_nothing(
    world: World, url: str, body: object, code: str, path: str
) -> None:
    publisher = client_of(world.business_token)

    answer = publisher.post(url, body, format="json")

    assert answer.status_code == 400, answer.content
    assert answer.json()["code"] == code
    assert answer.json()["path"] == path
    assert not DatabaseMessage.objects.exists()


def test_a_body_that_is_not_json_names_the_whole_body(world: World) -> None:
    publisher = client_of(world.business_token)

    for text in ('{"handler": "log", "n": NaN}', '{"handler": '):
        answer = publisher.post(PUBLISH, text, content_type="application/json")

        assert answer.status_code == 400, answer.content
        assert answer.json()["code"] == "parse_error"
        assert answer.json()["path"] == "$"
    assert not DatabaseMessage.objects.exists()


def test_a_table_deleted_by_a_request_that_rolled_back_is_whole_for_the_next(
    world: World,
) -> None:
    """Tables are kept per process; a request deleting one must not change the kept one (its
    id becomes None), or the next request finds a table without an id once the delete is
    rolled back (500)."""
    admin = client_of(world.admin_token)
    table = f"/api/v1/zstorage/tables/{TABLE}/"
    assert admin.get(table).status_code == 200  # now kept

    with transaction.atomic():
        assert admin.delete(f"{table}?confirm=true").status_code == 204
        transaction.set_rollback(True)

    read = admin.get(table)
    refused = admin.delete(table)
    assert read.status_code == 200
    assert read.json()["slug"] == TABLE
    assert read.json()["id"] is not None
    assert refused.status_code == 400, refused.content
    assert refused.json()["code"] == "schema_change_refused"


@pytest.mark.parametrize("endpoint", ["", "/instances", "/results"])
def test_a_run_page_offset_beyond_64_bits_is_refused(world: World, endpoint: str) -> None:
    admin = client_of(world.admin_token)
    url = (
        "/api/v1/jobs/runs/"
        if not endpoint
        else f"/api/v1/jobs/runs/{world.known['run_id']}{endpoint}"
    )

    answer = admin.get(url, {"offset": 2**70, "limit": 10})

    assert answer.status_code == 400, answer.content
    assert answer.json()["code"] == "invalid"
    assert "offset" in answer.json()["fields"]


def test_a_schedule_interval_beyond_32_bits_is_refused_and_nothing_changes(world: World) -> None:
    admin = client_of(world.admin_token)
    url = f"/api/v1/jobs/schedules/{world.known['schedule_id']}"

    answer = admin.patch(url, {"kind": "interval", "every_seconds": 2**40}, format="json")

    assert answer.status_code == 400, answer.content
    assert answer.json()["code"] == "invalid"
    assert "every_seconds" in answer.json()["fields"]
    assert admin.get(url).json()["kind"] == "cron"
