"""The queues app's housekeeping tasks delete what is past its retention and nothing else:
published outbox rows (never pending or failed ones), and idempotency keys, which the publish
API also treats as unknown once expired."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone
from rest_framework.test import APIClient

from queues import housekeeping
from queues.models import IdempotencyKey, OutboxMessage, OutboxState, Queue

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def outbox_row(queue: Queue, state: str, age_hours: float) -> OutboxMessage:
    at = NOW - dt.timedelta(hours=age_hours)
    return OutboxMessage.objects.create(
        queue=queue, body={"handler": "log"}, state=state, created_at=at,
        published_at=at if state == OutboxState.PUBLISHED else None,
    )  # fmt: skip


def test_only_published_rows_past_the_retention_are_deleted(settings: Any):
    settings.QUAYMASTER_OUTBOX_RETENTION_HOURS = 24
    queue = Queue.objects.create(name="q", type="database")
    old = outbox_row(queue, OutboxState.PUBLISHED, 25)
    recent = outbox_row(queue, OutboxState.PUBLISHED, 23)
    waiting = outbox_row(queue, OutboxState.PENDING, 100)
    parked = outbox_row(queue, OutboxState.FAILED, 100)

    assert housekeeping.prune_outbox(now=NOW) == 1

    assert set(OutboxMessage.objects.values_list("pk", flat=True)) == {
        recent.pk, waiting.pk, parked.pk,
    }  # fmt: skip
    assert not OutboxMessage.objects.filter(pk=old.pk).exists()


def test_idempotency_keys_expire(settings: Any):
    settings.QUAYMASTER_IDEMPOTENCY_KEY_HOURS = 24
    user = User.objects.create_user("ada")
    queue = Queue.objects.create(name="q", type="database")
    old = IdempotencyKey.objects.create(user=user, key="a", queue=queue)
    IdempotencyKey.objects.filter(pk=old.pk).update(created_at=NOW - dt.timedelta(hours=25))
    IdempotencyKey.objects.create(user=user, key="b", queue=queue)

    assert housekeeping.prune_idempotency_keys(now=NOW) == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["b"]


def test_an_expired_key_publishes_again_even_before_it_is_deleted(settings: Any):
    settings.QUAYMASTER_IDEMPOTENCY_KEY_HOURS = 24
    user = User.objects.create_user("ada")
    user.groups.add(Group.objects.get(name="admins"))
    queue = Queue.objects.create(name="q", type="database")
    client = APIClient()
    client.force_authenticate(user)
    url = f"/api/v1/zstorage/queue/{queue.pk}/publish"
    headers = {"HTTP_IDEMPOTENCY_KEY": "order-42"}

    first = client.post(url, {"handler": "log"}, format="json", **headers)
    replay = client.post(url, {"handler": "log"}, format="json", **headers)
    IdempotencyKey.objects.update(created_at=timezone.now() - dt.timedelta(hours=25))
    later = client.post(url, {"handler": "log"}, format="json", **headers)

    assert first.status_code == replay.status_code == later.status_code == 201
    assert replay.json()["message-id"] == first.json()["message-id"]
    assert later.json()["message-id"] != first.json()["message-id"]
    assert "Idempotent-Replayed" not in later
