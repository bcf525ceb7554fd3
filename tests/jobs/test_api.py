"""The jobs API as a client sees it: authenticated admins only, a 201 with the run's id, JSON
errors with stable codes for bad input (and nothing created), status, instances, results and
the steering actions."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from accounts.models import ApiToken
from jobs import runs
from jobs.execution import begin, finish
from jobs.models import JobInstance, JobRun
from jobs.states import InstanceState
from queues.models import Queue
from tests.jobs import sample_jobs  # noqa: F401  (registers the test jobs)

pytestmark = pytest.mark.django_db

API = "/api/v1/jobs/"


@pytest.fixture
def admin(db: None) -> APIClient:
    user = User.objects.create_user("root")
    user.groups.add(Group.objects.get(name="admins"))
    client = APIClient()
    _, raw = ApiToken.issue(user, "jobs")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def start(admin: APIClient, **body: Any) -> Any:
    return admin.post(f"{API}runs/", {"job": "tests.square", **body}, format="json")


def test_every_request_is_authenticated_and_for_admins_only(db: None, job_queue: Queue):
    assert APIClient().get(API).status_code == 401
    assert APIClient().post(f"{API}runs/", {}, format="json").status_code == 401
    business = APIClient()
    business.force_authenticate(User.objects.create_user("clerk"))
    answer = business.post(f"{API}runs/", {"job": "echo", "params": [{}]}, format="json")
    assert answer.status_code == 403
    assert answer.json()["code"] == "permission_denied"
    assert JobRun.objects.count() == 0


def test_the_registered_jobs_are_listed_with_their_descriptions(admin: APIClient):
    listed = {job["name"]: job["description"] for job in admin.get(API).json()}
    assert listed["echo"].startswith("Return the instance's parameters unchanged.")
    assert "tests.square" in listed


def test_start_answers_201_with_the_run_id_and_the_run_can_be_followed(
    admin: APIClient, job_queue: Queue
):
    answer = start(admin, params=[{"n": 1}, {"n": 2}, {"n": 3}], parallelism=2, queue="jobs")

    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["instances"] == 3
    assert body["state"] == "active"
    run_id = body["run-id"]

    status = admin.get(f"{API}runs/{run_id}").json()
    assert status["job"] == "tests.square"
    assert status["counts"] == {
        "total": 3, "pending": 3, "in_progress": 0, "completed": 0, "errored": 0, "cancelled": 0,
    }  # fmt: skip
    assert status["percent"] == 0
    assert [t["to"] for t in status["transitions"]] == ["active"]
    listed = admin.get(f"{API}runs/", {"job": "tests.square", "state": "active"}).json()
    assert [r["run-id"] for r in listed["results"]] == [run_id]
    assert admin.get(f"{API}runs/", {"state": "completed"}).json()["count"] == 0


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"job": "nope", "params": [{}]}, "unknown_job"),
        ({"params": {"n": 1}}, "invalid_parameters"),
        ({"params": [1, 2]}, "invalid_parameters"),
        ({"params": []}, "invalid_parameters"),
        ({"params": [{"n": 1}] * 4}, "too_many_instances"),
        ({"params": [{"n": 1}], "parallelism": 0}, "invalid_parallelism"),
        ({"params": [{"n": 1}], "parallelism": "ten"}, "invalid_parallelism"),
        ({"params": [{"n": 1}], "queue": "missing"}, "invalid_run_options"),
        ({"job": "tests.square"}, "invalid"),
    ],
)
def test_bad_input_is_a_400_with_a_stable_code_and_creates_nothing(
    admin: APIClient, job_queue: Queue, settings: Any, body: dict[str, Any], code: str
):
    settings.QUAYMASTER_JOB_MAX_INSTANCES = 3
    answer = admin.post(f"{API}runs/", {"job": "tests.square", **body}, format="json")
    assert answer.status_code == 400, answer.content
    assert answer.json()["code"] == code
    assert JobRun.objects.count() == JobInstance.objects.count() == 0


def test_a_body_that_is_not_json_is_a_400(admin: APIClient, job_queue: Queue):
    answer = admin.post(f"{API}runs/", "[{", content_type="application/json")
    assert answer.status_code == 400
    assert answer.json()["code"] == "parse_error"


def test_an_unknown_run_is_a_404(admin: APIClient):
    for path in ("", "/instances", "/results"):
        answer = admin.get(f"{API}runs/5b8a3f0e-0000-4000-8000-000000000000{path}")
        assert answer.status_code == 404
        assert answer.json()["code"] == "run_not_found"
    assert admin.get(f"{API}runs/not-a-uuid").status_code == 404


def test_instances_and_results_are_paged_and_split(admin: APIClient, job_queue: Queue):
    run = runs.start("tests.square", [{"n": n} for n in range(4)], parallelism=4, queue="jobs")
    for instance in run.instances.order_by("index"):
        started = begin(instance.pk)
        assert started is not None
        if instance.index == 1:
            error = {"type": "ValueError", "message": "bad", "traceback": "…", "attempts": 3}
            finish(started, InstanceState.ERRORED, error=error)
        else:
            finish(started, InstanceState.COMPLETED, result={"square": instance.index**2})

    found = admin.get(f"{API}runs/{run.pk}/results", {"wait": "5"}).json()
    assert found["state"] == "completed_with_errors"
    assert [(r["params"], r["result"]) for r in found["succeeded"]] == [
        ({"n": 0}, {"square": 0}), ({"n": 2}, {"square": 4}), ({"n": 3}, {"square": 9}),
    ]  # fmt: skip
    assert [(r["params"], r["error"]["message"]) for r in found["failed"]] == [({"n": 1}, "bad")]

    page = admin.get(f"{API}runs/{run.pk}/instances", {"offset": 1, "limit": 2}).json()
    assert page["count"] == 4
    assert [i["index"] for i in page["results"]] == [1, 2]
    errored = admin.get(f"{API}runs/{run.pk}/instances", {"state": "errored"}).json()
    assert [i["index"] for i in errored["results"]] == [1]
    assert admin.get(f"{API}runs/{run.pk}/instances", {"state": "odd"}).status_code == 400
    assert admin.get(f"{API}runs/{run.pk}/instances", {"limit": "0"}).status_code == 400
    assert admin.get(f"{API}runs/{run.pk}/results", {"wait": "-1"}).status_code == 400
    assert admin.get(f"{API}runs/{run.pk}/results", {"wait": "nan"}).status_code == 400

    retried = admin.post(f"{API}runs/{run.pk}/retry-failed")
    assert retried.status_code == 200
    assert retried.json()["state"] == "finishing"


def test_pause_resume_cancel_and_a_409_for_what_the_state_forbids(
    admin: APIClient, job_queue: Queue
):
    run = runs.start("tests.square", [{"n": n} for n in range(3)], parallelism=1, queue="jobs")

    assert admin.post(f"{API}runs/{run.pk}/pause").json()["state"] == "paused"
    again = admin.post(f"{API}runs/{run.pk}/pause")
    assert again.status_code == 409
    assert again.json()["code"] == "illegal_transition"
    assert admin.post(f"{API}runs/{run.pk}/resume").json()["state"] == "active"
    cancelled = admin.post(f"{API}runs/{run.pk}/cancel").json()
    assert cancelled["state"] == "cancelled"
    assert cancelled["counts"]["cancelled"] == 3
    assert admin.post(f"{API}runs/{run.pk}/resume").status_code == 409


def test_a_run_takes_a_priority_and_says_whether_its_queue_honours_it(
    admin: APIClient, job_queue: Queue
):
    answer = start(admin, params=[{"n": 1}], queue="jobs", priority=9)
    assert answer.status_code == 201, answer.content
    run = JobRun.objects.get(pk=answer.json()["run-id"])
    assert run.priority == 9
    shown = admin.get(f"{API}runs/{run.pk}").json()
    assert shown["priority"] == 9
    assert shown["priority-honoured"] is True
    assert "highest priority first" in shown["priority-note"]

    kafka = Queue.objects.create(name="events", type="kafka", partitions=3)
    on_kafka = start(admin, params=[{"n": 1}], queue=kafka.name, priority=9).json()["run-id"]
    shown = admin.get(f"{API}runs/{on_kafka}").json()
    assert shown["priority"] == 9
    assert shown["priority-honoured"] is False
    assert "Kafka has no message priorities" in shown["priority-note"]


@pytest.mark.parametrize("priority", [10, -1, "9", True, None])
def test_a_priority_outside_0_to_9_is_a_400(admin: APIClient, job_queue: Queue, priority: Any):
    answer = start(admin, params=[{"n": 1}], queue="jobs", priority=priority)
    assert answer.status_code == 400, answer.content
    assert answer.json()["code"] == "invalid_run_options"
    assert JobRun.objects.count() == 0
