"""Token scopes: a token may do what its user may do *and* what its scopes allow, on its queues
only; every API view is covered, and a view that declares nothing is closed to tokens."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.permissions import TokenScope
from accounts.scopes import ANY, Scope, required
from queues.models import Queue
from tests.zstorage.builders import contacts_table
from zstorage.models import Record, Table, TableGrant

pytestmark = pytest.mark.django_db


def api_views() -> list[tuple[str, Any]]:
    """Every (route, view class) under /api/v1/."""
    found: list[tuple[str, Any]] = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                route = prefix + str(entry.pattern)
                view = getattr(entry.callback, "cls", None) or getattr(
                    entry.callback, "view_class", None
                )
                if route.startswith("api/v1/"):
                    found.append((route, view))

    walk(get_resolver().url_patterns, "")
    return found


def test_every_api_view_checks_token_scopes_and_declares_what_it_needs():
    views = api_views()
    assert len(views) > 20, views
    for route, view in views:
        assert view is not None, f"{route}: not a DRF view"
        checks = view().get_permissions()
        assert any(isinstance(p, TokenScope) for p in checks), (
            f"{route}: {view.__name__} does not check token scopes"
        )
        for method in ("GET", "POST", "PATCH", "PUT", "DELETE"):
            assert required(view(), method) is not None, f"{route} {method}: no token_scope"


def client_for(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def admin_token(*scopes: Scope, queues: tuple[Queue, ...] = ()) -> APIClient:
    user = User.objects.create_superuser(f"admin{User.objects.count()}")
    token, raw = ApiToken.issue(user, "t", scopes=scopes, all_queues=not queues)
    token.queues.set(queues)
    return client_for(raw)


def test_a_publish_only_admin_token_cannot_administer_anything():
    orders = Queue.objects.create(name="orders", type="database")
    table = contacts_table()
    client = admin_token(Scope.PUBLISH)

    published = client.post(
        f"/api/v1/zstorage/queue/{orders.pk}/publish", {"handler": "log"}, format="json"
    )
    assert published.status_code == 201

    attempts = [
        client.patch(f"/api/v1/queues/{orders.pk}/", {"max_attempts": 1}, format="json"),
        client.post(f"/api/v1/queues/{orders.pk}/test-message/", {}, format="json"),
        client.post("/api/v1/queues/", {"name": "new", "type": "database"}, format="json"),
        client.delete(f"/api/v1/zstorage/tables/{table.slug}/?confirm=1"),
        client.get(f"/api/v1/zstorage/tables/{table.slug}/records/"),
        client.post(f"/api/v1/zstorage/tables/{table.slug}/records/", {"name": "x"}, format="json"),
        client.get("/api/v1/jobs/"),
        client.get("/api/v1/jobs/schedules/"),
    ]
    for answer in attempts:
        assert answer.status_code == 403, (answer.request["PATH_INFO"], answer.content)
        assert answer.json()["code"] == "token_scope"
    orders.refresh_from_db()
    assert orders.max_attempts != 1
    assert Table.objects.filter(pk=table.pk).exists()
    assert not Queue.objects.filter(name="new").exists()
    assert orders.database_messages.count() == 1, "only the publish went through"


def test_a_read_token_reads_and_cannot_write_records():
    table = contacts_table()
    admin = User.objects.create_superuser("boss")
    Record.objects.create(table=table, data={"name": "Ada"}, created_by=admin, updated_by=admin)
    client = admin_token(Scope.READ)
    records = f"/api/v1/zstorage/tables/{table.slug}/records/"

    assert client.get(records).status_code == 200
    assert client.post(records + "query", {"query": {}}, format="json").status_code == 200
    refused = client.post(records, {"name": "Grace"}, format="json")
    assert refused.status_code == 403
    assert "'write' scope" in refused.json()["detail"]
    assert client.post(f"/api/v1/zstorage/tables/{table.slug}/fields/", {}).status_code == 403
    assert table.records.count() == 1


def test_a_write_token_writes_records_but_not_the_schema():
    table = contacts_table()
    client = admin_token(Scope.WRITE)
    created = client.post(
        f"/api/v1/zstorage/tables/{table.slug}/records/", {"name": "Grace"}, format="json"
    )
    assert created.status_code == 201, created.content
    refused = client.post(
        f"/api/v1/zstorage/tables/{table.slug}/fields/",
        {"key": "notes", "name": "Notes", "type": "text"},
        format="json",
    )
    assert refused.status_code == 403
    assert not table.fields.filter(key="notes").exists()


def test_scopes_never_add_to_what_the_user_may_do():
    """A business user's token with every scope is still a business user."""
    table = contacts_table()
    group = Group.objects.get(name="business users")
    TableGrant.objects.create(table=table, group=group, can_view=True)
    user = User.objects.create_user("clerk")
    user.groups.add(group)
    _, raw = ApiToken.issue(user, "everything")
    client = client_for(raw)

    assert client.get(f"/api/v1/zstorage/tables/{table.slug}/records/").status_code == 200
    assert client.get("/api/v1/queues/").status_code == 403
    assert (
        client.post(
            f"/api/v1/zstorage/tables/{table.slug}/records/", {"name": "x"}, format="json"
        ).status_code
        == 403
    )


def test_a_queue_limited_admin_token_manages_only_its_queues():
    orders = Queue.objects.create(name="orders", type="database")
    emails = Queue.objects.create(name="emails", type="database")
    client = admin_token(Scope.ADMIN, Scope.PUBLISH, queues=(orders,))

    listed = client.get("/api/v1/queues/").json()
    names = [q["name"] for q in (listed["results"] if isinstance(listed, dict) else listed)]
    assert names == ["orders"]
    assert client.get(f"/api/v1/queues/{emails.pk}/").status_code == 404
    patched = client.patch(f"/api/v1/queues/{emails.pk}/", {"enabled": False}, format="json")
    assert patched.status_code == 404
    assert client.delete(f"/api/v1/queues/{emails.pk}/").status_code == 404
    tested = client.post(f"/api/v1/queues/{emails.pk}/test-message/", {}, format="json")
    assert tested.status_code == 404
    created = client.post("/api/v1/queues/", {"name": "new", "type": "database"}, format="json")
    assert created.status_code == 403
    assert created.json()["code"] == "token_queue_limit"
    published = client.post(
        f"/api/v1/zstorage/queue/{emails.pk}/publish", {"handler": "log"}, format="json"
    )
    assert published.status_code == 403

    emails.refresh_from_db()
    assert emails.enabled
    assert emails.database_messages.count() == 0
    assert not Queue.objects.filter(name="new").exists()
    own = client.patch(f"/api/v1/queues/{orders.pk}/", {"max_attempts": 3}, format="json")
    assert own.status_code == 200


def test_an_empty_queue_list_publishes_nowhere():
    orders = Queue.objects.create(name="orders", type="database")
    user = User.objects.create_superuser("ops")
    _, raw = ApiToken.issue(user, "none", scopes=[Scope.PUBLISH], all_queues=False)
    answer = client_for(raw).post(
        f"/api/v1/zstorage/queue/{orders.pk}/publish", {"handler": "log"}, format="json"
    )
    assert answer.status_code == 403
    assert orders.database_messages.count() == 0


def test_me_tells_a_script_what_its_token_may_do():
    user = User.objects.create_user("ops")
    _, raw = ApiToken.issue(user, "sync", scopes=[Scope.READ], all_queues=False)
    me = client_for(raw).get("/api/v1/me").json()
    assert me["token"] == {"name": "sync", "scopes": ["read"], "all_queues": False}
    assert me["is_admin"] is False


def test_a_view_without_a_declared_scope_is_closed_to_tokens():
    class Undeclared:
        pass

    class Request:
        auth = ApiToken(scopes=list(Scope), all_queues=True)
        method = "GET"

    assert required(Undeclared(), "GET") is None
    permission = TokenScope()
    assert not permission.has_permission(Request(), Undeclared())  # type: ignore[arg-type]
    assert permission.code == "token_scope"

    class Declared:
        token_scope = ANY

    assert permission.has_permission(Request(), Declared())  # type: ignore[arg-type]
