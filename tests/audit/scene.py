"""The scene of the audit coverage test: an admin signed in to the back-office and holding an
API token, and the objects the audited actions act on."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db import models
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ApiToken
from audit.models import AuditEvent
from jobs import runs, schedules
from jobs.models import JobRun, Schedule
from queues import services
from queues.backends import get_backend
from queues.messages import OutgoingMessage
from queues.models import Queue, QueueLink
from tests.jobs import sample_jobs  # noqa: F401  (registers the test jobs)
from tests.zstorage.builders import make_field
from workers.endpoints import create_endpoint
from workers.models import WebhookEndpoint
from zstorage import records, schema
from zstorage.models import Record, Table

SECRET = "s3cret-pw"
ADDRESS = "203.0.113.9"


class Scene:
    """An admin signed in to the back-office and holding an API token, and the objects the
    actions act on, each made on first use (through the services, as a user would have)."""

    def __init__(self) -> None:
        self.user = User.objects.create_user("auditor", is_staff=True, is_superuser=True)
        self.web = Client(REMOTE_ADDR=ADDRESS)
        self.web.force_login(self.user)
        self.token, raw = ApiToken.issue(self.user, "ops script")
        self.api = APIClient(REMOTE_ADDR=ADDRESS)
        self.api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    @functools.cached_property
    def queue(self) -> Queue:
        return services.create_queue(name="orders", type="database")

    def dead_letter(self) -> str:
        services.publish(self.queue, [OutgoingMessage.new({"handler": "log"}, "orders:1")])
        with get_backend(self.queue) as backend:
            (delivery,) = backend.fetch(max_messages=1, wait_seconds=0)
            backend.dead_letter(delivery, "boom")
        return delivery.message_id

    @functools.cached_property
    def table(self) -> Table:
        table = schema.create_table("Contacts", "contacts")
        make_field(table, "name", required=True)
        make_field(table, "age", "integer")
        return table

    @functools.cached_property
    def record(self) -> Record:
        return records.create_record(self.table, {"name": "Ada", "age": 36})

    @functools.cached_property
    def link(self) -> QueueLink:
        return services.save_link(QueueLink(table=self.table, queue=self.queue, handler="log"))

    @functools.cached_property
    def schedule(self) -> Schedule:
        schedule = Schedule(
            name="hourly", action="start_job", job="tests.square", params=[{"n": 1}],
            kind="cron", cron="0 * * * *", queue=self.jobs_queue,
        )  # fmt: skip
        return schedules.save(schedule)

    @functools.cached_property
    def jobs_queue(self) -> Queue:
        return services.create_queue(name="jobs", type="database")

    def run(self) -> JobRun:
        self.jobs_queue  # noqa: B018  (exists before the run)
        return runs.start("tests.square", [{"n": i} for i in range(3)], parallelism=1, queue="jobs")

    @functools.cached_property
    def endpoint(self) -> WebhookEndpoint:
        return create_endpoint(name="crm", url="https://crm.example.com/hooks", timeout=10)


@dataclass(frozen=True)
class Case:
    action: str
    via: str
    #: Does the action; returns the object the row must name (or None: no object).
    act: Callable[[Scene], models.Model | None]
    #: More about the row.
    check: Callable[[AuditEvent, Scene], None] | None = None


def ok(response: Any, *codes: int) -> Any:
    assert response.status_code in (codes or (200, 201, 204, 302)), response.content[:500]
    return response
