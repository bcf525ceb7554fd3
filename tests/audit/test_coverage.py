"""Every audited action writes its row when a user does it the way users do: a back-office
post from a signed-in admin (who, from which address) or an API call with a token (whose
token); the row names the action and its object, and masks secrets."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from accounts.models import ApiToken
from audit.masking import MASK
from audit.models import AuditEvent, Via
from jobs import runs, schedules
from jobs.models import JobRun, Schedule
from queues import services
from queues.models import Queue, QueueLink
from tests.audit.scene import ADDRESS, SECRET, Case, Scene, ok
from tests.jobs import sample_jobs  # noqa: F401  (registers the test jobs)
from tests.zstorage.builders import make_rule
from workers.endpoints import create_endpoint
from workers.models import WebhookEndpoint
from zstorage.models import Field, Record, Rule, Table

pytestmark = pytest.mark.django_db


# -- queues ------------------------------------------------------------------------------------


def queue_create(s: Scene) -> Queue:
    form = {
        "name": "mail", "type": "rabbitmq", "url": "amqp://localhost:5672/", "username": "app",
        "secret": SECRET, "visibility_timeout": 30, "max_attempts": 5, "enabled": "on",
    }  # fmt: skip
    ok(s.web.post("/queues/new", form))
    return Queue.objects.get(name="mail")


def secret_masked(event: AuditEvent, s: Scene) -> None:
    assert event.after["secret"] == MASK
    assert SECRET not in str(event.after)


def queue_change(s: Scene) -> Queue:
    form = {"name": "orders", "type": "database", "visibility_timeout": 30, "max_attempts": 9}
    ok(s.web.post(f"/queues/{s.queue.pk}/", {**form, "enabled": "on"}))
    return s.queue


def changed_attempts(event: AuditEvent, s: Scene) -> None:
    assert event.before["max_attempts"] != 9
    assert event.after["max_attempts"] == 9


def queue_delete(s: Scene) -> Queue:
    queue = services.create_queue(name="spare", type="database")
    ok(s.api.delete(f"/api/v1/queues/{queue.pk}/"))
    return queue


def queue_purge(s: Scene) -> Queue:
    ok(s.web.post(f"/queues/{s.queue.pk}/purge", {"confirm": "yes"}))
    return s.queue


def queue_disable(s: Scene) -> Queue:
    ok(s.web.post(f"/queues/{s.queue.pk}/toggle"))
    return s.queue


def queue_enable(s: Scene) -> Queue:
    services.set_enabled(s.queue, False)
    ok(s.web.post(f"/queues/{s.queue.pk}/toggle"))
    return s.queue


def dead_letter_send_back(s: Scene) -> Queue:
    key = s.dead_letter()
    ok(s.web.post(f"/queues/{s.queue.pk}/dead-letters/redrive", {"key": [key]}))
    return s.queue


def dead_letter_delete(s: Scene) -> Queue:
    key = s.dead_letter()
    ok(s.web.post(f"/queues/{s.queue.pk}/dead-letters/{key}/delete"))
    return s.queue


def outbox_retry(s: Scene) -> Queue:
    ok(s.web.post("/outbox/retry", {"queue": s.queue.pk}))
    return s.queue


def link_create(s: Scene) -> QueueLink:
    form = {"table": s.table.slug, "on_create": "on", "handler": "log"}
    ok(s.web.post(f"/queues/{s.queue.pk}/links/", form))
    return QueueLink.objects.get(queue=s.queue)


def link_change(s: Scene) -> QueueLink:
    form = {"table": s.table.slug, "on_delete": "on", "handler": "log", "filter": ""}
    ok(s.web.post(f"/queues/{s.queue.pk}/links/{s.link.pk}/", form))
    return s.link


def link_delete(s: Scene) -> QueueLink:
    link = s.link
    ok(s.web.post(f"/queues/{s.queue.pk}/links/{link.pk}/delete"))
    return link


# -- schema ------------------------------------------------------------------------------------


def table_create(s: Scene) -> Table:
    ok(s.web.post("/tables/new", {"name": "Orders", "slug": "orders", "description": ""}))
    return Table.objects.get(slug="orders")


def table_change(s: Scene) -> Table:
    ok(s.api.patch(f"/api/v1/zstorage/tables/{s.table.slug}/", {"name": "People"}, format="json"))
    return s.table


def table_delete(s: Scene) -> Table:
    table = s.table
    ok(s.web.post(f"/tables/{table.slug}/delete", {"confirm": "yes"}))
    return table


def table_grants(s: Scene) -> Table:
    clerks = Group.objects.get(name="business users")
    ok(s.web.post(f"/tables/{s.table.slug}/permissions", {f"grant-{clerks.pk}-add": "on"}))
    return s.table


def field_create(s: Scene) -> Field:
    body = {"name": "Email", "key": "email", "type": "email"}
    ok(s.api.post(f"/api/v1/zstorage/tables/{s.table.slug}/fields/", body, format="json"))
    return Field.objects.get(table=s.table, key="email")


def field_change(s: Scene) -> Field:
    field = Field.objects.get(table=s.table, key="age")
    form = {"name": "Age in years", "key": "age", "type": "integer", "default": ""}
    ok(s.web.post(f"/tables/{s.table.slug}/fields/age/edit", form))
    return field


def field_delete(s: Scene) -> Field:
    field = Field.objects.get(table=s.table, key="age")
    ok(s.api.delete(f"/api/v1/zstorage/tables/{s.table.slug}/fields/age/?confirm=1"))
    return field


def rule_create(s: Scene) -> Rule:
    body = {"kind": "unique", "message": "Taken.", "field": "name"}
    ok(s.api.post(f"/api/v1/zstorage/tables/{s.table.slug}/rules/", body, format="json"))
    return Rule.objects.get(table=s.table)


def rule_delete(s: Scene) -> Rule:
    rule = make_rule(s.table, "unique", on=Field.objects.get(table=s.table, key="name"))
    ok(s.web.post(f"/tables/{s.table.slug}/rules/{rule.pk}/delete"))
    return rule


# -- records -----------------------------------------------------------------------------------


def record_delete(s: Scene) -> Record:
    record = s.record
    ok(s.api.delete(f"/api/v1/zstorage/tables/{s.table.slug}/records/{record.pk}/"))
    return record


def record_bulk_create(s: Scene) -> Table:
    body = {"records": [{"name": "Ada"}, {"name": "Bob"}]}
    ok(s.api.post(f"/api/v1/zstorage/tables/{s.table.slug}/records/bulk", body, format="json"))
    return s.table


def record_bulk_update(s: Scene) -> Table:
    body = {"records": [{"id": s.record.pk, "data": {"age": 37}}]}
    ok(s.api.patch(f"/api/v1/zstorage/tables/{s.table.slug}/records/bulk", body, format="json"))
    return s.table


def record_import(s: Scene) -> Table:
    url = f"/records/{s.table.slug}/import"
    file = SimpleUploadedFile("contacts.csv", b"name,age\nAda,36\nBob,40\n", "text/csv")
    preview = ok(s.web.post(url, {"file": file}))
    ok(s.web.post(url, {"batch": preview.context["batch"]}))
    return s.table


def imported_two(event: AuditEvent, s: Scene) -> None:
    assert event.details == {"created": 2, "updated": 0}


# -- tokens, users, groups ---------------------------------------------------------------------


def token_create(s: Scene) -> ApiToken:
    ok(s.web.post("/tokens/", {"name": "billing", "scopes": ["publish"], "queues": [s.queue.pk]}))
    return ApiToken.objects.get(name="billing")


def token_shown_without_key(event: AuditEvent, s: Scene) -> None:
    assert event.after["queues"] == ["orders"]
    assert event.after["scopes"] == ["publish"]
    assert set(event.after) == {"name", "owner", "prefix", "scopes", "all_queues", "queues"}


def token_revoke(s: Scene) -> ApiToken:
    token, _ = ApiToken.issue(s.user, "old")
    ok(s.web.post(f"/tokens/{token.pk}/revoke"))
    return token


def user_create(s: Scene) -> User:
    form = {"username": "bea", "password1": SECRET, "password2": SECRET, "usable_password": "true"}
    ok(s.web.post("/django-admin/auth/user/add/", form))
    return User.objects.get(username="bea")


def user_change(s: Scene) -> User:
    bea = User.objects.create_user("bea")
    form = {
        "username": "bea", "email": "bea@example.com", "is_active": "on",
        "date_joined_0": "2026-01-01", "date_joined_1": "10:00:00",
        "groups": [Group.objects.get(name="admins").pk],
    }  # fmt: skip
    ok(s.web.post(f"/django-admin/auth/user/{bea.pk}/change/", form))
    return bea


def user_emailed(event: AuditEvent, s: Scene) -> None:
    assert (event.before["email"], event.after["email"]) == ("", "bea@example.com")


def user_groups(s: Scene) -> User:
    return user_change(s)


def user_delete(s: Scene) -> User:
    bea = User.objects.create_user("bea")
    ok(s.web.post(f"/django-admin/auth/user/{bea.pk}/delete/", {"post": "yes"}))
    return bea


def group_create(s: Scene) -> Group:
    ok(s.web.post("/django-admin/auth/group/add/", {"name": "auditors"}))
    return Group.objects.get(name="auditors")


def group_permissions(s: Scene) -> Group:
    group = Group.objects.create(name="auditors")
    permission = Permission.objects.get(codename="publish_queue")
    form = {"name": "auditors", "permissions": [permission.pk]}
    ok(s.web.post(f"/django-admin/auth/group/{group.pk}/change/", form))
    return group


def publish_granted(event: AuditEvent, s: Scene) -> None:
    assert event.details == {"permissions": ["queues.publish_queue"], "change": "added"}


def group_delete(s: Scene) -> Group:
    group = Group.objects.create(name="auditors")
    ok(s.web.post(f"/django-admin/auth/group/{group.pk}/delete/", {"post": "yes"}))
    return group


# -- jobs and schedules ------------------------------------------------------------------------


def run_start(s: Scene) -> JobRun:
    s.jobs_queue  # noqa: B018
    body = {"job": "tests.square", "params": [{"n": 1}, {"n": 2}], "queue": "jobs"}
    answer = ok(s.api.post("/api/v1/jobs/runs/", body, format="json"))
    return JobRun.objects.get(pk=answer.json()["run-id"])


def run_pause(s: Scene) -> JobRun:
    run = s.run()
    ok(s.api.post(f"/api/v1/jobs/runs/{run.pk}/pause"))
    return run


def run_resume(s: Scene) -> JobRun:
    run = s.run()
    runs.pause(run.pk)
    ok(s.web.post(f"/jobs/runs/{run.pk}/resume"))
    return run


def run_cancel(s: Scene) -> JobRun:
    run = s.run()
    ok(s.web.post(f"/jobs/runs/{run.pk}/cancel"))
    return run


def run_retry_failed(s: Scene) -> JobRun:
    run = s.run()
    runs.cancel(run.pk)
    ok(s.api.post(f"/api/v1/jobs/runs/{run.pk}/retry-failed"))
    return run


def schedule_create(s: Scene) -> Schedule:
    s.jobs_queue  # noqa: B018
    body = {
        "name": "nightly", "action": "start_job", "job": "tests.square", "params": [{"n": 3}],
        "kind": "cron", "cron": "0 3 * * *", "queue": "jobs",
    }  # fmt: skip
    ok(s.api.post("/api/v1/jobs/schedules/", body, format="json"))
    return Schedule.objects.get(name="nightly")


def schedule_change(s: Scene) -> Schedule:
    url = f"/api/v1/jobs/schedules/{s.schedule.pk}"
    ok(s.api.patch(url, {"cron": "30 * * * *"}, format="json"))
    return s.schedule


def schedule_disable(s: Scene) -> Schedule:
    ok(s.web.post(f"/schedules/{s.schedule.pk}/toggle"))
    return s.schedule


def schedule_enable(s: Scene) -> Schedule:
    schedules.set_enabled(s.schedule, False)
    ok(s.web.post(f"/schedules/{s.schedule.pk}/toggle"))
    return s.schedule


def schedule_run_now(s: Scene) -> Schedule:
    ok(s.web.post(f"/schedules/{s.schedule.pk}/run-now"))
    return s.schedule


def schedule_delete(s: Scene) -> Schedule:
    schedule = s.schedule
    ok(s.web.post(f"/schedules/{schedule.pk}/delete"))
    return schedule


# -- webhooks ----------------------------------------------------------------------------------


def webhook_create(s: Scene) -> WebhookEndpoint:
    form = {"name": "erp", "url": "https://erp.example.com/in", "timeout": "10"}
    ok(s.web.post("/webhooks/new", {**form, "secret": SECRET, "enabled": "on"}))
    return WebhookEndpoint.objects.get(name="erp")


def webhook_change(s: Scene) -> WebhookEndpoint:
    form = {"name": "crm", "url": "https://crm.example.com/hooks", "timeout": "20"}
    ok(s.web.post(f"/webhooks/{s.endpoint.pk}/", {**form, "secret": SECRET}))
    return s.endpoint


def webhook_delete(s: Scene) -> WebhookEndpoint:
    endpoint = s.endpoint
    ok(s.web.post(f"/webhooks/{endpoint.pk}/delete"))
    return endpoint


CASES = [
    Case("queue.create", Via.WEB, queue_create, secret_masked),
    Case("queue.change", Via.WEB, queue_change, changed_attempts),
    Case("queue.delete", Via.API, queue_delete),
    Case("queue.purge", Via.WEB, queue_purge),
    Case("queue.disable", Via.WEB, queue_disable),
    Case("queue.enable", Via.WEB, queue_enable),
    Case("dead_letter.send_back", Via.WEB, dead_letter_send_back),
    Case("dead_letter.delete", Via.WEB, dead_letter_delete),
    Case("outbox.retry", Via.WEB, outbox_retry),
    Case("queue_link.create", Via.WEB, link_create),
    Case("queue_link.change", Via.WEB, link_change),
    Case("queue_link.delete", Via.WEB, link_delete),
    Case("table.create", Via.WEB, table_create),
    Case("table.change", Via.API, table_change),
    Case("table.delete", Via.WEB, table_delete),
    Case("table.grants", Via.WEB, table_grants),
    Case("field.create", Via.API, field_create),
    Case("field.change", Via.WEB, field_change),
    Case("field.delete", Via.API, field_delete),
    Case("rule.create", Via.API, rule_create),
    Case("rule.delete", Via.WEB, rule_delete),
    Case("record.delete", Via.API, record_delete),
    Case("record.bulk_create", Via.API, record_bulk_create),
    Case("record.bulk_update", Via.API, record_bulk_update),
    Case("record.import", Via.WEB, record_import, imported_two),
    Case("token.create", Via.WEB, token_create, token_shown_without_key),
    Case("token.revoke", Via.WEB, token_revoke),
    Case("user.create", Via.WEB, user_create),
    Case("user.change", Via.WEB, user_change, user_emailed),
    Case("user.groups", Via.WEB, user_groups),
    Case("user.delete", Via.WEB, user_delete),
    Case("group.create", Via.WEB, group_create),
    Case("group.permissions", Via.WEB, group_permissions, publish_granted),
    Case("group.delete", Via.WEB, group_delete),
    Case("job_run.start", Via.API, run_start),
    Case("job_run.pause", Via.API, run_pause),
    Case("job_run.resume", Via.WEB, run_resume),
    Case("job_run.cancel", Via.WEB, run_cancel),
    Case("job_run.retry_failed", Via.API, run_retry_failed),
    Case("schedule.create", Via.API, schedule_create),
    Case("schedule.change", Via.API, schedule_change),
    Case("schedule.disable", Via.WEB, schedule_disable),
    Case("schedule.enable", Via.WEB, schedule_enable),
    Case("schedule.run_now", Via.WEB, schedule_run_now),
    Case("schedule.delete", Via.WEB, schedule_delete),
    Case("webhook.create", Via.WEB, webhook_create, secret_masked),
    Case("webhook.change", Via.WEB, webhook_change),
    Case("webhook.delete", Via.WEB, webhook_delete),
]


@pytest.mark.parametrize("case", CASES, ids=[case.action for case in CASES])
def test_each_audited_action_writes_its_row(case: Case) -> None:
    scene = Scene()
    target = case.act(scene)
    event = AuditEvent.objects.filter(action=case.action, actor_name="auditor").first()
    assert event is not None, list(AuditEvent.objects.values_list("action", "actor_name"))
    assert (event.via, event.actor_id, event.remote_addr) == (case.via, scene.user.pk, ADDRESS)
    if case.via == Via.API:
        assert (event.token_id, event.token_name) == (scene.token.pk, "ops script")
    else:
        assert (event.token_id, event.token_name) == (None, "")
    if target is not None:
        assert event.object_type == target._meta.label_lower
        assert event.object_id == str(target.pk)
        assert event.object_label
    if case.check is not None:
        case.check(event, scene)


@pytest.mark.parametrize(
    ("command", "action"),
    [
        ("rotate_queue_secrets", "queue.rotate_secrets"),
        ("rotate_webhook_secrets", "webhook.rotate_secrets"),
    ],
)
def test_a_command_writes_its_row_as_itself(
    command: str, action: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    services.create_queue(name="mail", type="rabbitmq", username="app", secret=SECRET)
    create_endpoint(name="crm", url="https://crm.example.com/hooks", secret=SECRET)
    monkeypatch.setattr("sys.argv", ["manage.py", command])
    call_command(command, stdout=io.StringIO())
    event = AuditEvent.objects.get(action=action)
    assert (event.via, event.actor_name, event.details) == (
        Via.COMMAND,
        f"command {command}",
        {"rotated": 1},
    )
