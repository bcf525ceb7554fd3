"""The trail's own contract: who and where, masking, append-only, retention."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.test import RequestFactory, override_settings
from django.utils import timezone

from audit import context, housekeeping
from audit.errors import AppendOnlyError
from audit.masking import MASK
from audit.models import AuditEvent, Via
from audit.trail import record

pytestmark = pytest.mark.django_db


def test_a_row_outside_any_request_is_the_system_with_the_process_name() -> None:
    event = record("queue.purge", details={"removed": 3})
    assert event.via == Via.SYSTEM
    assert event.actor_id is None
    assert event.actor_name.startswith("system (")
    assert event.details == {"removed": 3}


def test_a_request_gives_the_user_and_the_address() -> None:
    user = User.objects.create_user("ada")
    request = RequestFactory().post("/queues/", REMOTE_ADDR="10.1.2.3")
    request.user = user
    event = record("queue.create", user, after={"name": "orders"}, request=request)
    assert (event.via, event.actor_id, event.actor_name, event.remote_addr) == (
        Via.WEB,
        user.pk,
        "ada",
        "10.1.2.3",
    )
    assert (event.object_type, event.object_id, event.object_label) == (
        "auth.user",
        str(user.pk),
        "ada",
    )


def test_a_command_names_itself() -> None:
    with context.acting(context.for_command("purge_queue")):
        event = record("queue.purge")
    assert event.via == Via.COMMAND
    assert event.actor_name == "command purge_queue"


def test_secrets_and_passwords_in_urls_are_masked() -> None:
    event = record(
        "queue.change",
        before={"url": "amqp://guest:hunter2@localhost:5672/", "password": "", "region": "x"},
        after={
            "url": "amqp://guest:s3cret@localhost:5672/",
            "password": "s3cret",
            "connection": {"secret_key": "abc", "access_key_id": "AKIA"},
            "headers": [{"Authorization": "Bearer qm_x"}],
        },
    )
    assert event.before == {
        "url": f"amqp://guest:{MASK}@localhost:5672/",
        "password": "",
        "region": "x",
    }
    assert event.after["password"] == MASK
    assert event.after["connection"] == {"secret_key": MASK, "access_key_id": "AKIA"}  # an id
    assert event.after["headers"] == [{"Authorization": MASK}]
    assert "s3cret" not in str(event.after)
    about = record("queue.change", details={"secret_changed": True, "token_id": 4, "token": "x"})
    assert about.details == {"secret_changed": True, "token_id": 4, "token": MASK}
    assert "hunter2" not in str(event.before)


def test_a_rolled_back_change_leaves_no_row() -> None:
    def change() -> None:
        with transaction.atomic():
            record("queue.delete")
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        change()
    assert not AuditEvent.objects.exists()


def test_rows_cannot_be_changed_or_deleted() -> None:
    event = record("token.revoke")
    event.action = "token.create"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get().action == "token.revoke"


@override_settings(QUAYMASTER_AUDIT_RETENTION_DAYS=30)
def test_retention_deletes_only_rows_past_it() -> None:
    old, recent = record("queue.purge"), record("queue.delete")
    now = timezone.now()
    # Rows are append-only; the test back-dates one through SQL, as time would.
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {AuditEvent._meta.db_table} SET at = %s WHERE id = %s",
            [now - dt.timedelta(days=31), old.pk],
        )
    assert housekeeping.prune(now) == 1
    assert list(AuditEvent.objects.values_list("pk", flat=True)) == [recent.pk]
