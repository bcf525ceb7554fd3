from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.models import ApiToken, digest
from accounts.scopes import Scope
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
    assert not token.all_queues
    assert token.scope_set == set(Scope)
    assert token.allows_queue(orders.pk)
    assert not token.allows_queue(Queue.objects.get(name="emails").pk)
    assert client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw}").json()["username"] == "ops"


def test_create_api_token_takes_scopes_and_without_queues_means_all_queues(capsys):
    User.objects.create_user("ops")
    call_command("create_api_token", "ops", "--scopes", "read, write")
    token = ApiToken.objects.get(key_hash=digest(capsys.readouterr().out.strip()))
    assert token.scope_set == {Scope.READ, Scope.WRITE}
    assert token.all_queues
    with pytest.raises(CommandError, match="not root"):
        call_command("create_api_token", "ops", "--scopes", "read,root")


def test_create_api_token_refuses_unknown_users_and_queues():
    User.objects.create_user("ops")
    with pytest.raises(CommandError, match="No user 'nobody'"):
        call_command("create_api_token", "nobody")
    with pytest.raises(CommandError, match="No queue named ghost"):
        call_command("create_api_token", "ops", "--queues", "ghost")
    assert ApiToken.objects.count() == 0


def _me(client: Client, raw: str) -> int:
    return client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code


def test_a_known_token_is_looked_up_once_then_taken_from_the_cache(client: Client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    user = User.objects.create_user("ada")
    _, raw = ApiToken.issue(user, "billing sync")
    assert _me(client, raw) == 200
    with CaptureQueriesContext(connection) as queries:
        assert _me(client, raw) == 200
    assert not [q for q in queries.captured_queries if "backoffice_apitoken" in q["sql"]]
    from accounts.authentication import _lookup

    cached = _lookup(digest(raw))
    assert cached is not None
    assert "password" not in cached.user.__dict__, "no password hash in the cache"


def test_changes_to_a_cached_token_or_its_user_apply_at_once(client: Client):
    from accounts import epoch
    from accounts.authentication import _lookup, allows_queue

    def lookup(key_hash: str) -> ApiToken | None:
        epoch.cache.sync()  # as the next API request does
        return _lookup(key_hash)

    orders = Queue.objects.create(name="orders", type="database")
    emails = Queue.objects.create(name="emails", type="database")
    user = User.objects.create_user("ada")
    token, raw = ApiToken.issue(user, "billing sync")
    assert _me(client, raw) == 200
    assert allows_queue(lookup(token.key_hash), emails.pk)  # type: ignore[arg-type]

    token.queues.add(orders)
    token.all_queues = False
    token.save()  # narrowed to one queue
    cached = lookup(token.key_hash)
    assert cached is not None
    assert allows_queue(cached, orders.pk)
    assert not allows_queue(cached, emails.pk)
    orders.api_tokens.remove(token)  # from the other side of the relation: no queue is left
    emptied = lookup(token.key_hash)
    assert emptied is not None
    assert not allows_queue(emptied, orders.pk), "an emptied limit denies, it does not open"
    assert not allows_queue(emptied, emails.pk)

    user.is_active = False
    user.save()
    assert _me(client, raw) == 401
    user.is_active = True
    user.save()
    assert _me(client, raw) == 200
    ApiToken.objects.get(pk=token.pk).delete()
    assert _me(client, raw) == 401
