"""``ApiToken`` moved from ``backoffice`` to ``accounts`` in Django's state only: a database
migrated before the move keeps its tokens, their queues and their permissions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.apps import apps as current_apps
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.state import StateApps

from accounts.models import ApiToken, digest
from queues.models import Queue

pytestmark = pytest.mark.django_db(transaction=True)


def migrate(targets: list[tuple[str, str | None]]) -> None:
    MigrationExecutor(connection).migrate(targets)


def latest() -> list[tuple[str, str]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def state_before_the_move() -> StateApps:
    """Every app at its latest migration but ``backoffice`` at 0002 and no ``accounts``."""
    nodes = [n for n in latest() if n[0] not in ("accounts", "backoffice")]
    nodes.append(("backoffice", "0002_api_tokens"))
    return MigrationExecutor(connection).loader.project_state(nodes).apps


@pytest.fixture
def before_the_move() -> Iterator[StateApps]:
    """The database as it was before ``accounts`` existed; migrated back to now afterwards."""
    migrate([("accounts", None)])  # unapplies backoffice.0003 too, which depends on it
    yield state_before_the_move()
    migrate(latest())


def test_the_token_table_is_kept_not_recreated(before_the_move: StateApps):
    old_token = before_the_move.get_model("backoffice", "ApiToken")
    assert old_token._meta.db_table == ApiToken._meta.db_table == "backoffice_apitoken"
    assert ApiToken.queues.through._meta.db_table == "backoffice_apitoken_queues"
    with pytest.raises(LookupError):
        before_the_move.get_model("accounts", "ApiToken")


def test_a_token_made_before_the_move_works_after_it(before_the_move: StateApps):
    old = before_the_move
    user = old.get_model("auth", "User").objects.create(username="ada", is_superuser=True)
    queue = old.get_model("queues", "Queue").objects.create(name="orders", type="database")
    token = old.get_model("backoffice", "ApiToken").objects.create(
        user=user, name="billing sync", key_hash=digest("qm_old"), prefix="qm_old"
    )
    token.queues.add(queue)

    migrate(latest())

    moved = ApiToken.objects.get(pk=token.pk)
    assert (moved.name, moved.user.username, moved.key_hash) == (
        "billing sync",
        "ada",
        digest("qm_old"),
    )
    assert list(moved.queues.all()) == [Queue.objects.get(name="orders")]


def test_permissions_on_tokens_follow_the_model(before_the_move: StateApps):
    """A group granted a permission on tokens before the move still holds it after."""
    content_types = before_the_move.get_model("contenttypes", "ContentType").objects
    content_types.filter(app_label="accounts", model="apitoken").delete()  # as before the move
    old_type, _ = content_types.get_or_create(app_label="backoffice", model="apitoken")
    permission, _ = before_the_move.get_model("auth", "Permission").objects.get_or_create(
        content_type=old_type, codename="view_apitoken", defaults={"name": "Can view api token"}
    )
    group = before_the_move.get_model("auth", "Group").objects.create(name="auditors")
    group.permissions.add(permission)

    migrate(latest())

    current_apps.get_model("contenttypes", "ContentType").objects.clear_cache()
    held = Permission.objects.get(pk=permission.pk)
    assert (held.content_type.app_label, held.codename) == ("accounts", "view_apitoken")
    assert Group.objects.get(name="auditors").permissions.filter(pk=held.pk).exists()
