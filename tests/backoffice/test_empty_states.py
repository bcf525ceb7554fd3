"""On a fresh platform every list page says what to do next: its empty state links to where
that starts (or names the command), rather than only saying there is nothing."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from queues import services
from tests.zstorage.builders import make_field, make_table

pytestmark = pytest.mark.django_db

#: page -> the empty state's text and what it must offer (a link's target, or a command).
EMPTY = {
    "/tables/": ("No tables yet", "/tables/new"),
    "/queues/": ("No queues yet", "/queues/new"),
    "/webhooks/": ("No webhook endpoints yet", "/webhooks/new"),
    "/jobs/runs/": ("No run", "/jobs/#start"),
    "/schedules/": ("No schedule yet", "/schedules/new"),
    "/workers/": ("No worker has started yet", "manage.py runworkers"),
    "/alerts/": ("No open alerts", "/alerts/rules/new"),
    "/tokens/": ("No tokens yet", "Create one below"),
    "/records/": ("No table is shared with you yet", "/tables/new"),
}


@pytest.fixture
def admin(client: Client) -> Client:
    user = User.objects.create_user("root")
    user.groups.add(Group.objects.get(name="admins"))
    client.force_login(user)
    return client


def near(html: str, text: str) -> str:
    """The markup around the empty state's words."""
    at = html.index(text)
    return html[max(0, at - 200) : at + 600]


@pytest.mark.parametrize("page", list(EMPTY))
def test_an_empty_list_page_says_what_to_do(admin: Client, page: str):
    html = admin.get(page).content.decode()
    text, offer = EMPTY[page]
    assert text in html, page
    assert offer in near(html, text), near(html, text)


def test_an_empty_table_and_a_queue_without_links_say_what_to_do(admin: Client):
    table = make_table("orders", "Orders")
    make_field(table, "number")
    html = admin.get("/records/orders/").content.decode()
    around = near(html, "This table has no records yet")
    assert 'href="/records/orders/new"' in around
    assert re.search(r'href="/records/orders/import"', around)

    queue = services.create_queue(name="events", type="database")
    links = admin.get(f"/queues/{queue.pk}/links/").content.decode()
    assert "Add a link below" in near(links, "No table publishes to this queue yet")
    outbox = admin.get("/outbox/").content.decode()
    assert "Table links" in near(outbox, "Nothing is waiting")
