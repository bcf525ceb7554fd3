"""The Replays pages: preview a count, start, watch the progress, cancel — admins only."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from audit.models import AuditEvent
from queues.models import OutboxMessage, Queue, QueueLink
from queues.models.replay import Replay, ReplayState
from queues.replay import driver
from tests.queues.outbox_helpers import linked_table
from zstorage import records

pytestmark = pytest.mark.django_db


@pytest.fixture
def link() -> QueueLink:
    table = linked_table(Queue.objects.create(name="order-events", type="database"))
    records.bulk_create(table, [{"number": f"N-{n}", "status": "paid"} for n in range(4)])
    records.bulk_create(table, [{"number": f"M-{n}", "status": "new"} for n in range(2)])
    OutboxMessage.objects.all().delete()
    return QueueLink.objects.get(table=table)


@pytest.fixture
def admin() -> Client:
    user = User.objects.create_user("root", password="pw")
    user.groups.add(Group.objects.get(name="admins"))
    client = Client()
    client.force_login(user)
    return client


def test_preview_then_start_then_watch_then_cancel(admin: Client, link: QueueLink):
    form = {"link": link.pk, "filter": '{"status": "paid"}', "rate": "10"}
    preview = admin.post("/replays/new", {**form, "preview": ""})
    assert preview.status_code == 200
    assert "<strong>4</strong> records of Orders would be sent to order-events" in preview.text
    assert not Replay.objects.exists()

    started = admin.post("/replays/new", {**form, "start": ""}, follow=True)
    replay = Replay.objects.get()
    assert started.redirect_chain[-1][0] == f"/replays/{replay.pk}/"
    assert 'id="replay-written">0</strong> of <span id="replay-total">4</span>' in started.text
    assert 'hx-trigger="every 1s"' in started.text, "polled while it runs"
    assert AuditEvent.objects.get(action="replay.start").actor_name == "root"

    part = admin.get(
        f"/replays/{replay.pk}/", headers={"HX-Request": "true", "HX-Target": "replay-progress"}
    )
    assert part.text.lstrip().startswith('<section class="card"')

    cancelled = admin.post(f"/replays/{replay.pk}/cancel", follow=True)
    assert "cancelled after 0 records" in cancelled.text
    assert 'hx-trigger="every 1s"' not in cancelled.text, "no polling once it ended"
    assert Replay.objects.get().state == ReplayState.CANCELLED
    again = admin.post(f"/replays/{replay.pk}/cancel", follow=True)
    assert "already ended" in again.text

    listed = admin.get("/replays/")
    assert f'href="/replays/{replay.pk}/"' in listed.text


def test_a_finished_replay_shows_everything_written(admin: Client, link: QueueLink):
    admin.post("/replays/new", {"link": link.pk, "rate": "1000", "start": ""})
    replay = Replay.objects.get()
    driver.run(replay.pk, driver.new_owner())
    page = admin.get(f"/replays/{replay.pk}/")
    assert 'id="replay-written">6</strong>' in page.text
    assert "completed" in page.text


@pytest.mark.parametrize(
    ("form", "shown"),
    [
        ({"filter": "{nope", "rate": "5"}, "This is not JSON"),
        ({"filter": '{"nope": 1}', "rate": "5"}, "nope"),
        ({"ids": "1,x", "rate": "5"}, "Whole numbers separated by commas"),
        ({"changed_from": "soon", "rate": "5"}, "ISO 8601"),
        ({"rate": "0"}, "greater than or equal to 1"),
        ({"rate": "99999999"}, "Records per second"),
        ({"filter": '{"status": "gone"}', "rate": "5"}, "nothing to replay"),
    ],
)
def test_refusals_show_beside_their_inputs(
    admin: Client, link: QueueLink, form: dict[str, str], shown: str
):
    answer = admin.post("/replays/new", {"link": link.pk, **form, "start": ""})
    assert answer.status_code == 200
    assert shown in answer.text
    assert not Replay.objects.exists()


def test_business_users_cannot_open_replays(link: QueueLink):
    clerk = Client()
    clerk.force_login(User.objects.create_user("clerk"))
    assert clerk.get("/replays/").status_code == 403
    assert (
        clerk.post("/replays/new", {"link": link.pk, "rate": "5", "start": ""}).status_code == 403
    )
    assert not Replay.objects.exists()


def test_a_link_offers_its_replay(admin: Client, link: QueueLink):
    links = admin.get(f"/queues/{link.queue_id}/links/")
    assert f'href="/replays/new?link={link.pk}"' in links.text
    form = admin.get(f"/replays/new?link={link.pk}")
    assert f'<option value="{link.pk}" selected>' in form.text
