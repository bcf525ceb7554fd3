"""The cache epoch: every change to what API requests keep per process gives it a new value,
by database trigger, however the change is made; a process that reads a new value drops what
it kept, so a change made anywhere (here: a queryset update, as another process or an admin's
SQL would) takes effect at the next request."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts import epoch
from accounts.models import ApiToken, CacheEpoch
from queues.models import DatabaseMessage, Queue

pytestmark = pytest.mark.django_db


def value() -> int:
    return CacheEpoch.objects.get(pk=1).value


def test_each_watched_change_gives_the_epoch_a_new_value_and_a_use_does_not():
    """The triggers are what the cache rests on (on SQLite a table rebuild by a later
    migration would drop them, and this test would tell)."""
    seen = {value()}

    def moved() -> bool:
        now = value()
        fresh = now not in seen
        seen.add(now)
        return fresh

    user = User.objects.create_user("ada")
    assert moved(), "a user created"
    token, _ = ApiToken.issue(user, "sync")
    assert moved(), "a token issued"
    queue = Queue.objects.create(name="orders", type="database")
    assert moved(), "a queue created"
    token.queues.add(queue)
    assert moved(), "a token's queue limit"
    ApiToken.objects.filter(pk=token.pk).update(last_used_at="2026-01-01T00:00:00Z")
    assert not moved(), "a token used"
    User.objects.filter(pk=user.pk).update(last_login="2026-01-01T00:00:00Z")
    assert not moved(), "a user logged in"
    ApiToken.objects.filter(pk=token.pk).update(revoked_at="2026-01-01T00:00:00Z")
    assert moved(), "a token revoked"
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert moved(), "a user deactivated"
    group = Group.objects.create(name="publishers")
    assert moved(), "a group"
    group.permissions.add(Permission.objects.get(codename="publish_queue"))
    assert moved(), "a group's permission"
    user.groups.add(group)
    assert moved(), "a membership"
    user.user_permissions.add(Permission.objects.get(codename="publish_queue"))
    assert moved(), "a user's own permission"
    Queue.objects.filter(pk=queue.pk).update(enabled=False)
    assert moved(), "a queue disabled"
    Queue.objects.filter(pk=queue.pk).delete()
    assert moved(), "a queue deleted"


def publish(client: Client, raw: str, queue: Queue) -> int:
    return client.post(
        f"/api/v1/zstorage/queue/{queue.pk}/publish",
        json.dumps({"handler": "log"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    ).status_code


@pytest.fixture
def publisher() -> tuple[ApiToken, str, Queue, Queue]:
    user = User.objects.create_user("ops")
    user.user_permissions.add(Permission.objects.get(codename="publish_queue"))
    token, raw = ApiToken.issue(user, "sync")
    orders = Queue.objects.create(name="orders", type="database")
    emails = Queue.objects.create(name="emails", type="database")
    return token, raw, orders, emails


def test_changes_made_behind_the_process_s_back_apply_at_the_next_request(
    client: Client, publisher: tuple[ApiToken, str, Queue, Queue]
):
    token, raw, orders, emails = publisher
    assert publish(client, raw, orders) == 201
    assert publish(client, raw, emails) == 201  # both kept now

    token.queues.through.objects.create(apitoken_id=token.pk, queue_id=orders.pk)
    ApiToken.objects.filter(pk=token.pk).update(all_queues=False)
    assert publish(client, raw, emails) == 403, "the limit applies at once"
    assert publish(client, raw, orders) == 201
    ApiToken.objects.filter(pk=token.pk).update(scopes=["read"])
    assert publish(client, raw, orders) == 403, "a narrowed scope applies at once"
    ApiToken.objects.filter(pk=token.pk).update(scopes=["publish"])
    Queue.objects.filter(pk=orders.pk).update(enabled=False)
    assert publish(client, raw, orders) == 409, "the queue disabled at once"
    User.objects.filter(pk=token.user_id).update(is_active=False)
    assert publish(client, raw, orders) == 401, "the user deactivated at once"
    User.objects.filter(pk=token.user_id).update(is_active=True)
    Queue.objects.filter(pk=orders.pk).update(enabled=True)
    assert publish(client, raw, orders) == 201
    ApiToken.objects.filter(pk=token.pk).update(revoked_at="2026-01-01T00:00:00Z")
    assert publish(client, raw, orders) == 401, "the token revoked at once"
    assert DatabaseMessage.objects.filter(queue=orders).count() == 3


def test_a_warm_publish_reads_the_epoch_and_nothing_else_it_kept(
    client: Client, publisher: tuple[ApiToken, str, Queue, Queue]
):
    _, raw, orders, _ = publisher
    assert publish(client, raw, orders) == 201
    with CaptureQueriesContext(connection) as queries:
        assert publish(client, raw, orders) == 201
    read = " ".join(q["sql"] for q in queries.captured_queries)
    assert "accounts_cacheepoch" in read
    for kept in ("backoffice_apitoken", "auth_user", "auth_permission", 'FROM "queues_queue"'):
        assert kept not in read, kept


def test_unknown_tokens_are_not_kept(client: Client):
    epoch.cache.clear()
    for n in range(5):
        answer = client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer qm_unknown{n}")
        assert answer.status_code == 401
    assert not [key for key in epoch.cache._values if key[0] == "apitoken"]


def test_tables_grants_and_schema_changes_move_the_epoch_and_apply_at_the_next_request(
    client: Client,
):
    from zstorage import schema
    from zstorage.models import Table, TableGrant

    seen = {value()}
    table = schema.create_table("Orders", "orders")
    assert value() not in seen, "a table created"
    seen.add(value())
    schema.add_field(table, name="Number", key="number", type="text")
    assert value() not in seen, "a field added (its table's schema token renewed)"
    clerk = User.objects.create_user("clerk")
    group = Group.objects.create(name="clerks")
    clerk.groups.add(group)
    grant = TableGrant.objects.create(table=table, group=group, can_view=True)
    _, raw = ApiToken.issue(clerk, "reader")

    def records() -> int:
        return client.get(
            "/api/v1/zstorage/tables/orders/records/", HTTP_AUTHORIZATION=f"Bearer {raw}"
        ).status_code

    assert records() == 200
    assert records() == 200  # kept now
    TableGrant.objects.filter(pk=grant.pk).update(can_view=False)
    assert records() == 404, "the grant withdrawn at once"
    TableGrant.objects.filter(pk=grant.pk).update(can_view=True)
    assert records() == 200
    Table.objects.filter(pk=table.pk).update(slug="purchases")
    assert records() == 404, "the table renamed at once"
