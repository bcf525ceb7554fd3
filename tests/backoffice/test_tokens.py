from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client

from backoffice.models import ApiToken, digest
from queues.models import Queue

pytestmark = pytest.mark.django_db


def test_a_token_is_stored_only_as_a_digest():
    user = User.objects.create_user("ada")
    token, raw = ApiToken.issue(user, "billing sync")
    stored = ApiToken.objects.get(pk=token.pk)
    assert raw.startswith("qm_")
    assert stored.key_hash == digest(raw) != raw
    assert raw not in str(ApiToken.objects.filter(pk=token.pk).values().get())
    assert stored.prefix == raw[:10]


def test_a_revoked_or_unknown_token_is_refused_with_401(client: Client):
    user = User.objects.create_user("ada")
    token, raw = ApiToken.issue(user, "billing sync")
    assert client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
    assert ApiToken.objects.get(pk=token.pk).last_used_at is not None

    token.revoke()
    response = client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 401
    assert response.json() == {
        "code": "authentication_failed",
        "detail": "This API token was revoked.",
    }
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/api/v1/me", HTTP_AUTHORIZATION="Bearer qm_nope").status_code == 401


def test_create_api_token_prints_a_working_token_scoped_to_queues(client: Client, capsys):
    User.objects.create_user("ops")
    orders = Queue.objects.create(name="orders", type="database")
    Queue.objects.create(name="emails", type="database")

    call_command("create_api_token", "ops", "--queues", "orders", "--name", "cron")
    raw = capsys.readouterr().out.strip()

    token = ApiToken.objects.get(key_hash=digest(raw))
    assert token.name == "cron"
    assert list(token.queues.all()) == [orders]
    assert token.allows_queue(orders.pk)
    assert not token.allows_queue(Queue.objects.get(name="emails").pk)
    assert client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw}").json()["username"] == "ops"


def test_create_api_token_refuses_unknown_users_and_queues():
    User.objects.create_user("ops")
    with pytest.raises(CommandError, match="No user 'nobody'"):
        call_command("create_api_token", "nobody")
    with pytest.raises(CommandError, match="No queue named ghost"):
        call_command("create_api_token", "ops", "--queues", "ghost")
    assert ApiToken.objects.count() == 0
