"""The API tokens page: create (key shown once), scope to queues, revoke; admins see all."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.test import Client

from accounts.models import ApiToken, digest
from accounts.scopes import Scope
from queues.models import Queue

pytestmark = pytest.mark.django_db


def logged_in(client: Client, name: str, admin: bool = False) -> User:
    user = User.objects.create_user(name)
    if admin:
        user.groups.add(Group.objects.get(name="admins"))
    client.force_login(user)
    return user


def test_create_a_scoped_token_shown_once(client: Client):
    user = logged_in(client, "ada")
    user.user_permissions.add(Permission.objects.get(codename="publish_queue"))
    orders = Queue.objects.create(name="orders", type="database")
    Queue.objects.create(name="emails", type="database")
    page = client.get("/tokens/").content.decode()
    assert "orders" in page
    assert "emails" in page

    response = client.post(
        "/tokens/", {"name": "billing", "scopes": ["publish"], "queues": [orders.pk]}
    )
    assert response.status_code == 201
    body = response.content.decode()
    shown = re.search(r'id="new-token-key">(qm_[^<]+)<', body)
    assert shown is not None
    raw = shown.group(1)
    token = ApiToken.objects.get(key_hash=digest(raw))
    assert token.user == user
    assert list(token.queues.all()) == [orders]
    assert token.scope_set == {Scope.PUBLISH}
    assert not token.all_queues
    assert response["Cache-Control"].startswith("max-age=0")
    assert raw not in client.get("/tokens/").content.decode()  # never again
    assert client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200


def test_a_token_needs_a_name(client: Client):
    logged_in(client, "ada")
    response = client.post("/tokens/", {"name": ""})
    assert response.status_code == 422
    assert ApiToken.objects.count() == 0


def test_users_see_and_revoke_only_their_own_tokens(client: Client):
    bob = User.objects.create_user("bob")
    bobs, _ = ApiToken.issue(bob, "bob's script")
    logged_in(client, "ada")
    mine, _ = ApiToken.issue(User.objects.get(username="ada"), "my script")
    page = client.get("/tokens/").content.decode()
    assert "my script" in page
    assert "bob&#x27;s script" not in page
    assert client.post(f"/tokens/{bobs.pk}/revoke").status_code == 404
    client.post(f"/tokens/{mine.pk}/revoke")
    mine.refresh_from_db()
    bobs.refresh_from_db()
    assert mine.revoked
    assert not bobs.revoked


def test_admins_see_and_revoke_every_token(client: Client):
    bob = User.objects.create_user("bob")
    bobs, _ = ApiToken.issue(bob, "bob's script")
    logged_in(client, "root", admin=True)
    page = client.get("/tokens/").content.decode()
    assert "bob&#x27;s script" in page
    assert '<th scope="col">User</th>' in page
    client.post(f"/tokens/{bobs.pk}/revoke")
    bobs.refresh_from_db()
    assert bobs.revoked


def test_someone_who_may_not_publish_is_shown_no_queue_names(client: Client):
    """Queue names are the admins' and the publishers' business: a business user's token page
    lists none, and a queue typed into the request anyway is not attached."""
    user = logged_in(client, "clerk")
    user.groups.add(Group.objects.get(name="business users"))
    orders = Queue.objects.create(name="orders-secret-name", type="database")
    page = client.get("/tokens/").content.decode()
    assert "orders-secret-name" not in page
    assert 'name="queues"' not in page
    response = client.post(
        "/tokens/", {"name": "mine", "scopes": ["read", "publish"], "queues": [orders.pk]}
    )
    assert response.status_code == 422, "publishing is not offered to who may not publish"
    response = client.post("/tokens/", {"name": "mine", "scopes": ["read"], "queues": [orders.pk]})
    assert response.status_code == 201
    assert "orders-secret-name" not in response.content.decode()
    token = ApiToken.objects.get(user=user)
    assert not token.queues.exists()
    assert token.scope_set == {Scope.READ}
