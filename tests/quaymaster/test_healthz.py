from __future__ import annotations

from unittest import mock

import pytest
from django.db import OperationalError
from django.test import Client


@pytest.mark.django_db
def test_healthz_answers_without_login_and_checks_the_database(client: Client, settings):
    settings.KAFKA_BOOTSTRAP_SERVERS = "127.0.0.1:19092"
    settings.SQS_ENDPOINT_URL = ""
    settings.AMQP_URL = "amqp://guest:guest@127.0.0.1:56729//"

    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["database"]["vendor"] in {"sqlite", "postgresql"}
    assert body["services"] == {
        "database_queue": True,
        "kafka": True,
        "sqs": False,
        "rabbitmq": True,
    }
    assert "guest" not in response.content.decode(), "credentials never leave /healthz"


DRIVER_TEXT = (
    'connection to server at "db.internal.example" (10.1.2.3), port 5432 failed: '
    'FATAL: password authentication failed for user "quaymaster"'
)


@pytest.mark.django_db
def test_healthz_is_503_when_the_database_does_not_answer_and_keeps_the_why_in_the_log(
    client: Client, caplog: pytest.LogCaptureFixture
):
    with mock.patch(
        "django.db.backends.utils.CursorWrapper.execute",
        side_effect=OperationalError(DRIVER_TEXT),
    ):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert (
        response.json()["database"]["error"]
        == "The database did not answer; the details are in the web process's log."
    )
    text = response.content.decode()
    for secret in ("db.internal.example", "10.1.2.3", "authentication", "FATAL"):
        assert secret not in text, secret
    assert DRIVER_TEXT in caplog.text
