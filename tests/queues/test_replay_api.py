"""``/api/v1/replays/`` as a client sees it: admins only, preview, start (audited), progress,
cancel, and refusals with stable codes — never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from accounts.models import ApiToken
from audit.models import AuditEvent
from queues.models import OutboxMessage, Queue, QueueLink
from queues.models.replay import Replay
from queues.replay import driver
from tests.queues.outbox_helpers import linked_table
from zstorage import records

pytestmark = pytest.mark.django_db

API = "/api/v1/replays/"


@pytest.fixture
def link() -> QueueLink:
    table = linked_table(Queue.objects.create(name="order-events", type="database"))
    records.bulk_create(table, [{"number": f"N-{n}", "status": "paid"} for n in range(5)])
    records.bulk_create(table, [{"number": f"M-{n}", "status": "new"} for n in range(3)])
    OutboxMessage.objects.all().delete()
    return QueueLink.objects.get(table=table)


@pytest.fixture
def admin(db: None) -> APIClient:
    user = User.objects.create_user("root")
    user.groups.add(Group.objects.get(name="admins"))
    client = APIClient()
    _, raw = ApiToken.issue(user, "replays")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def post(client: APIClient, path: str, body: Any) -> Any:
    return client.post(f"{API}{path}", body, format="json")


def test_preview_start_follow_and_cancel(admin: APIClient, link: QueueLink):
    body = {"link": link.pk, "selection": {"filter": {"status": "paid"}}, "rate": 50}
    preview = post(admin, "preview/", body)
    assert preview.status_code == 200, preview.content
    assert preview.json() == {
        "count": 5, "limit": 1_000_000, "seconds": 0.1, "table": "orders", "queue": "order-events",
    }  # fmt: skip
    assert not Replay.objects.exists(), "a preview starts nothing"

    started = post(admin, "", body)
    assert started.status_code == 201, started.content
    replay = started.json()
    assert (replay["state"], replay["total"], replay["written"]) == ("running", 5, 0)
    assert (replay["table"], replay["queue"], replay["created_by"]) == (
        "orders", "order-events", "root",
    )  # fmt: skip
    audit = AuditEvent.objects.get(action="replay.start")
    assert (audit.actor_name, audit.via, audit.details["records"]) == ("root", "api", 5)

    listed = admin.get(API, {"state": "running"}).json()
    assert [r["id"] for r in listed["results"]] == [replay["id"]]

    cancelled = post(admin, f"{replay['id']}/cancel/", None)
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "cancelled"
    assert AuditEvent.objects.get(action="replay.cancel").actor_name == "root"
    again = post(admin, f"{replay['id']}/cancel/", None)
    assert (again.status_code, again.json()["code"]) == (409, "replay_ended")


def test_progress_shows_on_the_replay(admin: APIClient, link: QueueLink):
    replay = post(admin, "", {"link": link.pk, "rate": 1000}).json()
    driver.run(replay["id"], driver.new_owner())
    done = admin.get(f"{API}{replay['id']}/").json()
    assert (done["state"], done["written"], done["percent"], done["eta_seconds"]) == (
        "completed", 8, 100, None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"link": 10**30, "rate": 5}, {"link"}),
        ({"link": "x", "rate": "fast"}, {"link", "rate"}),
        ({"rate": 0, "selection": {"filter": {"nope": 1}}}, {"link", "rate"}),
        ({"link": None, "selection": [], "rate": 10**40}, {"link", "selection", "rate"}),
        ({"selection": {"ids": [0, True], "changed_to": "soon"}, "rate": 1}, {"link", "ids"}),
    ],
)
def test_bad_input_is_a_400_naming_each_part(
    admin: APIClient, link: QueueLink, body: dict[str, Any], fields: set[str]
):
    answer = post(admin, "", body)
    assert answer.status_code == 400, answer.content
    assert answer.json()["code"] == "invalid_replay"
    assert fields <= set(answer.json()["fields"])
    assert not Replay.objects.exists()


def test_other_refusals(admin: APIClient, link: QueueLink, settings: Any):
    bad_filter = post(admin, "", {"link": link.pk, "rate": 1, "selection": {"filter": {"x": 1}}})
    assert bad_filter.json()["code"] == "invalid_replay"
    assert "filter" in bad_filter.json()["fields"]
    not_an_object = post(admin, "", [1, 2])
    assert (not_an_object.status_code, not_an_object.json()["code"]) == (400, "invalid_replay")
    settings.QUAYMASTER_REPLAY_MAX_RECORDS = 7
    too_many = post(admin, "", {"link": link.pk, "rate": 1})
    assert (too_many.status_code, too_many.json()["code"]) == (400, "replay_too_large")
    missing = admin.get(f"{API}12345/")
    assert (missing.status_code, missing.json()["code"]) == (404, "replay_not_found")
    assert admin.get(API, {"state": "sleeping"}).status_code == 400
    assert admin.get(API, {"limit": "-1"}).status_code == 400


def test_only_admins_and_only_their_queues(link: QueueLink):
    assert APIClient().get(API).status_code == 401
    clerk = APIClient()
    clerk.force_authenticate(User.objects.create_user("clerk"))
    assert post(clerk, "", {"link": link.pk, "rate": 1}).status_code == 403
    root = User.objects.create_user("root")
    root.groups.add(Group.objects.get(name="admins"))
    other = Queue.objects.create(name="other", type="database")
    _, raw = ApiToken.issue(root, "narrow", all_queues=False, queues=[other])
    narrow = APIClient()
    narrow.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    refused = post(narrow, "", {"link": link.pk, "rate": 1})
    assert (refused.status_code, refused.json()["fields"]) == (
        400, {"link": ["No table link with this id."]},
    )  # fmt: skip
    assert not Replay.objects.exists()
