"""The schedules API: admins only; create, read, change, delete, run now; bad input is a 400
with a stable code and saves nothing; the answer shows the next fire and the last fires."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django_celery_beat.models import PeriodicTask
from rest_framework.test import APIClient

from jobs.models import JobRun, Schedule
from queues.models import Queue
from tests.jobs import sample_jobs  # noqa: F401  (registers the test jobs)

pytestmark = pytest.mark.django_db

API = "/api/v1/jobs/schedules/"
HOURLY = {
    "name": "hourly squares", "action": "start_job", "job": "tests.square",
    "params": [{"n": 3}], "kind": "cron", "cron": "0 * * * *", "queue": "jobs",
}  # fmt: skip


@pytest.fixture
def admin(db: None) -> APIClient:
    user = User.objects.create_user("root")
    user.groups.add(Group.objects.get(name="admins"))
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_only_admins_see_schedules(db: None):
    assert APIClient().get(API).status_code == 401
    clerk = APIClient()
    clerk.force_authenticate(User.objects.create_user("clerk"))
    assert clerk.post(API, HOURLY, format="json").status_code == 403
    assert Schedule.objects.count() == 0


def test_create_read_change_run_now_and_delete(admin: APIClient, job_queue: Queue):
    created = admin.post(API, {**HOURLY, "time_zone": "Europe/Lisbon"}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["next_fire"].endswith(":00:00+00:00")  # Lisbon is on UTC in December
    assert body["fires"] == []
    url = f"{API}{body['id']}"

    changed = admin.patch(url, {"cron": "*/15 * * * *", "enabled": False}, format="json")
    assert changed.status_code == 200
    assert changed.json()["cron"] == "*/15 * * * *"
    assert changed.json()["next_fire"] is None  # disabled
    task = PeriodicTask.objects.get(pk=Schedule.objects.get().periodic_task_id)
    assert (task.crontab.minute, task.enabled) == ("*/15", False)

    fired = admin.post(f"{url}/run-now")
    assert fired.status_code == 201
    assert fired.json()["outcome"] == "started"
    run = JobRun.objects.get()
    assert fired.json()["run-id"] == str(run.pk)
    assert [f["run-id"] for f in admin.get(url).json()["fires"]] == [str(run.pk)]

    assert admin.delete(url).status_code == 204
    assert admin.get(url).status_code == 404
    assert PeriodicTask.objects.filter(pk=task.pk).count() == 0
    assert [s["name"] for s in admin.get(API).json()] == []


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"cron": "0 25 * * *"}, "invalid_cron"),
        ({"job": "nope"}, "unknown_job"),
        ({"queue": "missing"}, "invalid_run_options"),
        ({"action": "publish", "message": {"to": "ada"}}, "missing_handler"),
        ({"kind": "interval", "every_seconds": 2}, "invalid_schedule"),
        ({"kind": "weekly"}, "invalid"),
        ({"params": "not a list"}, "invalid_parameters"),
    ],
)
def test_bad_input_is_a_400_with_a_stable_code_and_saves_nothing(
    admin: APIClient, job_queue: Queue, changes: dict[str, Any], code: str
):
    answer = admin.post(API, {**HOURLY, **changes}, format="json")
    assert answer.status_code == 400, answer.content
    assert answer.json()["code"] == code
    assert Schedule.objects.count() == PeriodicTask.objects.count() == 0


def test_a_refused_change_leaves_the_schedule_as_it_was(admin: APIClient, job_queue: Queue):
    schedule_id = admin.post(API, HOURLY, format="json").json()["id"]
    answer = admin.patch(f"{API}{schedule_id}", {"cron": "nope"}, format="json")
    assert answer.status_code == 400
    assert answer.json()["fields"] == {"cron": [answer.json()["detail"]]}
    assert Schedule.objects.get().cron == "0 * * * *"
    assert admin.post(f"{API}999/run-now").status_code == 404
