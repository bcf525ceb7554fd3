"""What the API fuzz run acts on: a table with a field of most types, a rule and a record; a
database queue; a schedule; a job run; an admin and a business user, each with an API token.

The business user is in the ``business users`` group, which is granted every action on the
table, and may publish: so that generated requests reach the record and publish endpoints with
ids and names that exist, not only their 403s and 404s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Group, Permission, User

from accounts.models import ApiToken
from accounts.roles import Role
from jobs import runs, schedules
from jobs.context import JobContext
from jobs.models import Schedule, Trigger
from jobs.registry import job
from queues import services
from zstorage import records, schema
from zstorage.models import TableGrant

TABLE = "fuzz-orders"
JOB = "tests.fuzz.noop"
QUEUE = "fuzz-queue"


@job(JOB)
def noop(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """A job for the run the fuzz run steers (no worker runs it there)."""
    return params


@dataclass(frozen=True)
class World:
    admin_token: str
    business_token: str
    #: Path parameter name → a value that names something that exists.
    known: dict[str, Any]


def build() -> World:
    admin = User.objects.create_user("fuzz-admin")
    admin.groups.add(Group.objects.get(name=Role.ADMINS))
    clerk = User.objects.create_user("fuzz-clerk")
    business = Group.objects.get(name=Role.BUSINESS_USERS)
    clerk.groups.add(business)
    clerk.user_permissions.add(Permission.objects.get(codename="publish_queue"))

    people = schema.create_table(name="Fuzz people", slug="fuzz-people")
    schema.add_field(people, name="Name", key="name", type="text")
    table = schema.create_table(name="Fuzz orders", slug=TABLE)
    fields: list[tuple[str, str, dict[str, Any]]] = [
        ("title", "text", {}),
        ("notes", "long_text", {}),
        ("count", "integer", {}),
        ("total", "decimal", {}),
        ("paid", "boolean", {}),
        ("due", "date", {}),
        ("at", "datetime", {}),
        ("email", "email", {}),
        ("site", "url", {}),
        ("status", "choice", {"choices": ["open", "closed"]}),
        ("tags", "multi_choice", {"choices": ["a", "b"]}),
        ("extra", "json", {}),
        ("buyer", "reference", {"table": "fuzz-people"}),
    ]
    for key, type_, options in fields:
        schema.add_field(table, name=key.title(), key=key, type=type_, options=options)
    title = table.fields.get(key="title")
    rule = schema.add_rule(table, "unique", "Titles are unique.", field=title, params={})
    for granted in (table, people):
        TableGrant.objects.create(
            table=granted,
            group=business,
            can_view=True,
            can_add=True,
            can_change=True,
            can_delete=True,
        )
    person = records.create_record(people, {"name": "Ada"}, actor=admin)
    record = records.create_record(
        table, {"title": "first", "count": 3, "buyer": person.pk}, actor=admin
    )

    queue = services.create_queue(name=QUEUE, type="database")
    schedule = schedules.save(
        Schedule(created_by=admin),
        {
            "name": "fuzz schedule",
            "action": "publish",
            "queue": queue,
            "message": {"handler": "log"},
            "kind": "cron",
            "cron": "0 * * * *",
        },
    )

    run = runs.start(JOB, [{"n": 1}, {"n": 2}], queue=queue, trigger=Trigger.API, user=admin)

    _, admin_token = ApiToken.issue(admin, "fuzz")
    _, business_token = ApiToken.issue(clerk, "fuzz")
    return World(
        admin_token=admin_token,
        business_token=business_token,
        known={
            "slug": TABLE,
            "key": "title",
            "rule_id": rule.pk,
            "record_id": record.pk,
            "id": queue.pk,
            "queue_id": queue.pk,
            "queue_name": QUEUE,
            "schedule_id": schedule.pk,
            "run_id": str(run.pk),
        },
    )
