"""Liveness and readiness: ``/healthz`` answers while the process does; ``/readyz`` (and
``manage.py health`` and the dashboard) runs the checks, each timed, says what is degraded and
why, is 503 only when the database does not answer, and never shows a host, a credential or a
driver's words — nor, to anyone but an admin, a queue's name."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.db import OperationalError
from django.test import Client
from django.utils import timezone

from queues import services
from queues.models import OutboxMessage, OutboxState
from tests.services import service_env
from workers.models import EventKind, LifecycleEvent, WorkerProcess

pytestmark = pytest.mark.django_db

DRIVER_TEXT = (
    'connection to server at "db.internal.example" (10.1.2.3), port 5432 failed: '
    'FATAL: password authentication failed for user "quaymaster"'
)
#: A port nothing listens on: the engine "is down".
CLOSED = "amqp://127.0.0.1:9/"


def checks(body: dict) -> dict[str, dict]:
    return {check["name"]: check for check in body["checks"]}


def admin_client(client: Client) -> Client:
    user = User.objects.create_user("root")
    user.groups.add(Group.objects.get(name="admins"))
    client.force_login(user)
    return client


def test_healthz_is_liveness_and_asks_nothing_else(client: Client):
    with mock.patch(
        "django.db.backends.utils.CursorWrapper.execute", side_effect=OperationalError("down")
    ):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ok_with_each_check_timed(client: Client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok", body
    found = checks(body)
    assert set(found) == {"database", "outbox", "workers", "dead letters"}
    assert all(check["status"] == "ok" and check["ms"] >= 0 for check in found.values())


def test_readyz_is_503_without_the_database_and_keeps_the_why_in_the_log(
    client: Client, caplog: pytest.LogCaptureFixture
):
    with mock.patch(
        "django.db.backends.utils.CursorWrapper.execute",
        side_effect=OperationalError(DRIVER_TEXT),
    ):
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert checks(body)["database"]["reason"] == "The database did not answer."
    text = response.content.decode()
    for secret in ("db.internal.example", "10.1.2.3", "authentication", "FATAL"):
        assert secret not in text, secret
    assert DRIVER_TEXT in caplog.text


def test_a_queue_without_a_live_worker_is_degraded_and_named_only_to_admins(client: Client):
    queue = services.create_queue(name="orders-secret-name", type="database")
    anonymous = client.get("/readyz")
    assert anonymous.status_code == 200
    assert anonymous.json()["status"] == "degraded"
    assert checks(anonymous.json())["workers"]["reason"] == "1 enabled queue has no live worker."
    assert "orders-secret-name" not in anonymous.content.decode()

    admin = admin_client(client).get("/readyz").json()
    assert checks(admin)["workers"]["detail"] == "No live worker for: orders-secret-name."

    WorkerProcess.objects.create(queue=queue, host="box-1", pid=4242, concurrency=1)
    assert client.get("/readyz").json()["status"] == "ok", "a live worker: ready again"


def test_an_old_pending_outbox_row_and_a_recent_dead_letter_are_degraded(client: Client, settings):
    settings.QUAYMASTER_READY_OUTBOX_AGE_SECONDS = 60
    queue = services.create_queue(name="events", type="database")
    WorkerProcess.objects.create(queue=queue, host="box-1", pid=1, concurrency=1)
    row = OutboxMessage.objects.create(queue=queue, body={"handler": "log"})
    OutboxMessage.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(hours=1))
    LifecycleEvent.objects.create(kind=EventKind.DEAD_LETTERED, queue="events", handler="log")

    found = checks(client.get("/readyz").json())
    assert found["outbox"]["status"] == "degraded"
    assert "waited 3600 s (more than 60 s): is a relay running?" in found["outbox"]["reason"]
    assert found["dead letters"]["reason"] == "1 message dead-lettered in the last 5 minutes."

    OutboxMessage.objects.filter(pk=row.pk).update(state=OutboxState.PUBLISHED)
    assert checks(client.get("/readyz").json())["outbox"]["status"] == "ok"


def test_an_engine_that_does_not_answer_is_degraded_and_recovers(client: Client):
    service_env("AMQP_URL")  # the deployment's RabbitMQ, which a queue without a url uses
    queue = services.create_queue(name="mail", type="rabbitmq", url=CLOSED)
    WorkerProcess.objects.create(queue=queue, host="box-1", pid=1, concurrency=1)

    down = client.get("/readyz")
    assert down.status_code == 200, "a broker down leaves the web process ready to serve"
    engine = checks(down.json())["engine rabbitmq"]
    assert engine["status"] == "degraded"
    assert engine["reason"] == "RabbitMQ did not answer for some queues."
    assert engine["ms"] < 5000, "within the deadline"
    assert "127.0.0.1" not in down.content.decode()
    assert "guest" not in down.content.decode()

    services.update_queue(queue, url="", secret="")
    up = client.get("/readyz").json()
    assert checks(up)["engine rabbitmq"]["status"] == "ok", up


def test_manage_py_health_prints_the_checks_and_exits_by_status(capsys):
    with pytest.raises(SystemExit) as ok:
        call_command("health")
    assert ok.value.code == 0
    assert "status: ok" in capsys.readouterr().out

    services.create_queue(name="orders", type="database")
    with pytest.raises(SystemExit) as degraded:
        call_command("health")
    assert degraded.value.code == 1
    out = capsys.readouterr().out
    assert "No live worker for: orders." in out
    assert "status: degraded" in out


def test_the_dashboard_loads_the_same_checks_for_admins(client: Client):
    services.create_queue(name="orders", type="database")
    admin = admin_client(client)
    home = admin.get("/").content.decode()
    assert 'hx-get="/health/"' in home
    part = admin.get("/health/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="health").content.decode()
    assert 'id="health-status"' in part
    assert "No live worker for: orders." in part
    assert "<html" not in part
    client.logout()
    clerk = User.objects.create_user("clerk")
    clerk.groups.add(Group.objects.get(name="business users"))
    client.force_login(clerk)
    assert client.get("/health/").status_code == 403
    assert 'hx-get="/health/"' not in client.get("/").content.decode()
