"""Reading the trail: the back-office page (admins only, filters, before/after shown, CSV of
the filtered set) and the REST endpoint (admins' tokens and sessions only, the same filters,
paged)."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.scopes import Scope
from audit import context
from audit.masking import MASK
from audit.models import AuditEvent
from audit.trail import record
from queues import services
from queues.models import Queue

pytestmark = pytest.mark.django_db


def admin_user(name: str = "ada") -> User:
    user = User.objects.create_user(name)
    user.groups.add(Group.objects.get(name="admins"))
    return user


def as_user(user: User, address: str = "198.51.100.7") -> context.Actor:
    return context.Actor(via="web", user_id=user.pk, username=user.username, remote_addr=address)


def back_date(event: AuditEvent, days: float) -> None:
    """Rows are append-only: the test moves one back in time through SQL, as time would."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {AuditEvent._meta.db_table} SET at = %s WHERE id = %s",
            [timezone.now() - dt.timedelta(days=days), event.pk],
        )


@pytest.fixture
def trail() -> dict[str, Queue]:
    """Ada changed and purged "orders"; Bob created "mail" with a secret a week ago."""
    ada, bob = admin_user("ada"), admin_user("bob")
    with context.acting(as_user(ada)):
        orders = services.create_queue(name="orders", type="database")
        services.update_queue(orders, max_attempts=9)
        services.purge(orders)
    with context.acting(as_user(bob, "192.0.2.1")):
        mail = services.create_queue(
            name="mail", type="rabbitmq", url="amqp://localhost/", username="app", secret="pw!"
        )
    back_date(AuditEvent.objects.get(action="queue.create", object_id=str(mail.pk)), 7)
    return {"orders": orders, "mail": mail}


def rows_of(client: Client, query: str = "") -> list[str]:
    page = client.get(f"/audit/{query}")
    assert page.status_code == 200, page.content[:300]
    return [row["event"].action for row in page.context["rows"]]


def test_only_admins_open_the_page_and_its_export(client: Client, trail: dict[str, Queue]):
    assert client.get("/audit/")["Location"].startswith("/login/")
    client.force_login(User.objects.create_user("clerk"))
    assert client.get("/audit/").status_code == 403
    assert client.get("/audit/export.csv").status_code == 403


def test_the_page_filters_and_shows_what_changed(client: Client, trail: dict[str, Queue]):
    client.force_login(User.objects.get(username="ada"))
    orders = trail["orders"]
    everything = client.get("/audit/").content.decode()
    assert 'href="/audit/"' in everything, "the navigation links the page"
    assert rows_of(client, "?actor=ADA&object_type=queues.queue") == [
        "queue.purge", "queue.change", "queue.create",
    ]  # fmt: skip
    assert rows_of(client, "?action=queue.purge") == ["queue.purge"]
    assert rows_of(client, "?action=queue&actor=bob") == ["queue.create"]
    assert rows_of(client, f"?object_type=queues.queue&object_id={orders.pk}&via=web") == [
        "queue.purge", "queue.change", "queue.create",
    ]  # fmt: skip
    week_ago = (timezone.now() - dt.timedelta(days=7)).date().isoformat()
    assert rows_of(client, f"?to={week_ago}&object_type=queues.queue") == ["queue.create"]
    assert "queue.create" not in rows_of(client, f"?from={timezone.now().date()}&actor=bob")

    changed = client.get("/audit/?action=queue.change").content.decode()
    assert "1 of 13 settings changed" in changed
    assert '<tr class="changed"><th scope="row">max_attempts' in changed
    assert "198.51.100.7" in changed
    created = client.get("/audit/?actor=bob").content.decode()
    assert MASK in created
    assert "pw!" not in created

    empty = client.get("/audit/?actor=nobody").content.decode()
    assert "No event matches these filters" in empty
    bad = client.get("/audit/?from=yesterday&via=carrier-pigeon")
    assert bad.status_code == 400
    assert "Use an ISO 8601 date" in bad.content.decode()
    assert "Choose one of web, api, command, system" in bad.content.decode()


def test_the_export_is_the_filtered_set_as_csv(client: Client, trail: dict[str, Queue]):
    client.force_login(User.objects.get(username="ada"))
    response = client.get("/audit/export.csv?action=queue&actor=ada")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    lines = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [line["action"] for line in lines] == ["queue.purge", "queue.change", "queue.create"]
    assert {line["actor"] for line in lines} == {"ada"}
    assert lines[1]["before"].startswith("{")
    assert '"max_attempts": 9' in lines[1]["after"]
    assert client.get("/audit/export.csv?from=soon").status_code == 400


def api_client(user: User, *scopes: Scope, queues: tuple[Queue, ...] = ()) -> APIClient:
    _, raw = ApiToken.issue(
        user, "siem", scopes=scopes or (Scope.ADMIN,), all_queues=not queues, queues=queues
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_the_api_gives_admins_the_filtered_trail_page_by_page(trail: dict[str, Queue]):
    client = api_client(User.objects.get(username="bob"))
    answer = client.get("/api/v1/audit/", {"actor": "ada", "limit": 2})
    assert answer.status_code == 200
    body = answer.json()
    assert (body["count"], body["offset"], body["limit"]) == (3, 0, 2)
    assert [e["action"] for e in body["results"]] == ["queue.purge", "queue.change"]
    change = body["results"][1]
    assert change["before"]["max_attempts"] != 9
    assert change["after"]["max_attempts"] == 9
    assert (change["actor"], change["via"], change["remote_addr"]) == ("ada", "web", "198.51.100.7")
    assert change["object_type"] == "queues.queue"
    rest = client.get("/api/v1/audit/", {"actor": "ada", "offset": 2}).json()
    assert [e["action"] for e in rest["results"]] == ["queue.create"]

    mail = client.get("/api/v1/audit/", {"object_id": trail["mail"].pk, "action": "queue"})
    (created,) = mail.json()["results"]
    assert created["after"]["secret"] == MASK
    for bad in ({"from": "soon"}, {"limit": 0}, {"offset": -1}, {"via": "fax"}, {"limit": "x"}):
        refused = client.get("/api/v1/audit/", bad)
        assert refused.status_code == 400, bad
        assert refused.json()["code"] == "invalid"


def test_the_api_is_for_admins_with_an_admin_token_for_all_queues(trail: dict[str, Queue]):
    clerk = User.objects.create_user("clerk")
    refused = api_client(clerk).get("/api/v1/audit/")
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    session = APIClient()
    session.force_login(clerk)
    assert session.get("/api/v1/audit/").status_code == 403

    bob = User.objects.get(username="bob")
    narrow = api_client(bob, Scope.READ, Scope.WRITE).get("/api/v1/audit/")
    assert (narrow.status_code, narrow.json()["code"]) == (403, "token_scope")
    limited = api_client(bob, queues=(trail["orders"],)).get("/api/v1/audit/")
    assert (limited.status_code, limited.json()["code"]) == (403, "token_queue_limit")
    assert APIClient().get("/api/v1/audit/").status_code == 401
    admin_session = APIClient()
    admin_session.force_login(bob)
    assert admin_session.get("/api/v1/audit/").status_code == 200


def test_the_token_that_acted_is_named(trail: dict[str, Queue]):
    bob = User.objects.get(username="bob")
    client = api_client(bob)
    token = ApiToken.objects.get(name="siem", user=bob)
    assert (
        client.patch(f"/api/v1/queues/{trail['orders'].pk}/", {"max_attempts": 3}).status_code
        == 200
    )
    change = client.get("/api/v1/audit/", {"action": "queue.change", "actor": "bob"}).json()
    (event,) = change["results"]
    assert (event["via"], event["token_id"], event["token_name"]) == ("api", token.pk, "siem")
    assert event["remote_addr"] == "127.0.0.1"


def test_a_management_command_is_recorded_as_itself(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("sys.argv", ["manage.py", "create_api_token", "--user", "ada"])
    event = record("token.create")
    assert (event.via, event.actor_name) == ("command", "command create_api_token")
