"""The schedules pages: the list with next and last fires, create and edit with the API's
checks shown beside their fields (nothing saved), enable/disable, run now, delete, and the
dashboard panel. Admins only."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django_celery_beat.models import PeriodicTask

from jobs import firing, schedules
from jobs.models import JobRun, Schedule, ScheduleFire
from queues import services
from queues.models import Queue

pytestmark = pytest.mark.django_db


def user(name: str, *, admin: bool) -> User:
    account = User.objects.create_user(name)
    account.groups.add(Group.objects.get_or_create(name="admins" if admin else "business users")[0])
    return account


@pytest.fixture
def admin(client: Client) -> Client:
    client.force_login(user("root", admin=True))
    return client


@pytest.fixture
def queue(db: None) -> Queue:
    return services.create_queue(name="jobs", type="database")


FORM = {
    "name": "nightly echo", "action": "start_job", "job": "echo", "params_text": '[{"n": 1}]',
    "parallelism": "5", "kind": "cron", "cron": "0 2 * * *", "time_zone": "Europe/Lisbon",
    "catch_up": "skip", "enabled": "on", "message_text": "",
}  # fmt: skip


def nightly(queue: Queue, **changes: Any) -> Schedule:
    fields: dict[str, Any] = {
        "name": "nightly echo", "action": "start_job", "job": "echo", "params": [{"n": 1}],
        "kind": "cron", "cron": "0 2 * * *", "time_zone": "Europe/Lisbon", "queue": queue,
    }  # fmt: skip
    return schedules.save(Schedule(**{**fields, **changes}))


def test_only_admins_open_the_schedules_pages(client: Client, queue: Queue):
    schedule = nightly(queue)
    client.force_login(user("clerk", admin=False))
    for url in ("/schedules/", "/schedules/new", f"/schedules/{schedule.pk}/"):
        assert client.get(url).status_code == 403
    assert client.post(f"/schedules/{schedule.pk}/run-now").status_code == 403
    assert JobRun.objects.count() == 0


def test_creating_a_schedule_from_the_page(admin: Client, queue: Queue):
    answer = admin.post("/schedules/new", {**FORM, "queue": queue.pk})
    schedule = Schedule.objects.get()
    assert answer.status_code == 302
    assert answer["Location"] == f"/schedules/{schedule.pk}/"
    assert schedule.cron == "0 2 * * *"
    assert schedule.time_zone == "Europe/Lisbon"
    assert schedule.catch_up == "skip"
    assert schedule.params == [{"n": 1}]
    assert PeriodicTask.objects.get(pk=schedule.periodic_task_id).crontab.hour == "2"
    page = admin.get(answer["Location"]).content.decode()
    assert "Next fire:" in page
    assert "02:00</time></strong> (Europe/Lisbon)" in page


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"cron": "0 2 * *"}, "cron", "is not a cron expression of five fields"),
        ({"job": ""}, "job", "No job is registered as"),
        ({"params_text": "[{"}, "params_text", "This is not JSON"),
        ({"params_text": "{}"}, "params_text", "must be a list of JSON objects"),
        ({"action": "publish", "message_text": '{"to": "x"}'}, "message_text", "needs a"),
        ({"kind": "interval", "every_seconds": "3"}, "every_seconds", "at least 10 seconds"),
        ({"time_zone": "Mars/Base"}, "time_zone", "Unknown time zone"),
    ],
)
def test_a_refusal_is_shown_beside_its_field_and_nothing_is_saved(
    admin: Client, queue: Queue, changes: dict[str, str], field: str, message: str
):
    answer = admin.post("/schedules/new", {**FORM, "queue": queue.pk, **changes})
    assert answer.status_code == 422
    page = answer.content.decode()
    assert message in page
    assert f'id="id_{field}"' in page
    assert Schedule.objects.count() == PeriodicTask.objects.count() == 0


def test_editing_keeps_what_was_refused_out(admin: Client, queue: Queue):
    schedule = nightly(queue)
    bad = admin.post(f"/schedules/{schedule.pk}/", {**FORM, "queue": queue.pk, "cron": "x"})
    assert bad.status_code == 422
    schedule.refresh_from_db()
    assert schedule.cron == "0 2 * * *"
    good = admin.post(f"/schedules/{schedule.pk}/",
                      {**FORM, "queue": queue.pk, "cron": "30 3 * * 1"})  # fmt: skip
    assert good.status_code == 302
    schedule.refresh_from_db()
    assert schedule.cron == "30 3 * * 1"


def test_list_toggle_run_now_and_delete(admin: Client, queue: Queue):
    schedule = nightly(queue)
    page = admin.get("/schedules/").content.decode()
    assert "nightly echo" in page
    assert "<code>0 2 * * *</code>" in page
    assert "never" in page

    admin.post(f"/schedules/{schedule.pk}/toggle")
    schedule.refresh_from_db()
    assert not schedule.enabled
    assert not PeriodicTask.objects.get(pk=schedule.periodic_task_id).enabled

    answer = admin.post(f"/schedules/{schedule.pk}/run-now")
    run = JobRun.objects.get()
    assert answer["Location"] == f"/jobs/runs/{run.pk}/"
    detail = admin.get(f"/schedules/{schedule.pk}/").content.decode()
    assert f"/jobs/runs/{run.pk}/" in detail
    assert "(run now)" in detail

    admin.post(f"/schedules/{schedule.pk}/delete")
    assert Schedule.objects.count() == 0
    assert JobRun.objects.count() == 1  # what it started stays


def test_the_dashboard_shows_next_fires_and_failing_schedules(admin: Client, queue: Queue):
    nightly(queue)
    ping = schedules.save(
        Schedule(name="ping", action="publish", queue=queue, message={"handler": "log"},
                 kind="interval", every_seconds=60)
    )  # fmt: skip
    Queue.objects.filter(pk=queue.pk).update(enabled=False)
    fired = firing.fire(ping.pk, now=ping.created_at + dt.timedelta(seconds=61))
    assert fired.fire is not None
    assert ScheduleFire.objects.get().outcome == "failed"

    page = admin.get("/").content.decode()
    assert 'id="dashboard-schedules"' in page
    assert "Last fire failed:" in page
    assert "disabled" in page
    assert 'nightly echo</a> <span class="small muted">next</span>' in page
