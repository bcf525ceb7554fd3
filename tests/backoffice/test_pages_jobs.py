"""The jobs pages: the registered jobs and the start form (typed JSON or a file, with every
refusal shown beside its field and nothing started), the runs list, a run's page with its
counts, failures and actions, an instance's page, the results downloads, the progress stream
and the dashboard panel. Admins only."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from jobs import runs
from jobs.execution import begin, finish
from jobs.models import JobRun, Trigger
from jobs.states import InstanceState, RunState
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


def ended_run(queue: Queue) -> JobRun:
    """A run of echo over three instances: two completed, the middle one errored."""
    run = runs.start("echo", [{"n": 0}, {"n": 1}, {"n": 2}], parallelism=3, queue=queue)
    for instance in run.instances.order_by("index"):
        started = begin(instance.pk)
        assert started is not None
        if instance.index == 1:
            error = {"type": "KeyError", "message": "'sku'", "traceback": "Traceback …",
                     "attempts": 3}  # fmt: skip
            finish(started, InstanceState.ERRORED, error=error)
        else:
            finish(started, InstanceState.COMPLETED, result=instance.params)
    run.refresh_from_db()
    return run


def test_only_admins_open_the_jobs_pages(client: Client, queue: Queue):
    run = runs.start("echo", [{}], queue=queue)
    assert client.get("/jobs/").status_code == 302  # to the login page
    client.force_login(user("clerk", admin=False))
    for url in ("/jobs/", "/jobs/runs/", f"/jobs/runs/{run.pk}/"):
        assert client.get(url).status_code == 403
    assert client.post(f"/jobs/runs/{run.pk}/cancel").status_code == 403
    run.refresh_from_db()
    assert run.state == RunState.FINISHING


def test_the_job_list_shows_each_job_with_its_description(admin: Client, queue: Queue):
    page = admin.get("/jobs/").content.decode()
    assert "<code>echo</code>" in page
    assert "Return the instance&#x27;s parameters unchanged." in page
    assert 'id="start-run"' in page


def test_starting_a_run_from_typed_json_opens_its_page(admin: Client, queue: Queue):
    answer = admin.post(
        "/jobs/",
        {"job": "echo", "params_text": '[{"n": 1}, {"n": 2}]', "parallelism": "1",
         "queue": queue.pk, "on_complete_handler": "log"},
    )  # fmt: skip
    run = JobRun.objects.get()
    assert answer.status_code == 302
    assert answer["Location"] == f"/jobs/runs/{run.pk}/"
    assert run.trigger == Trigger.PAGE
    assert run.created_by is not None
    assert run.created_by.get_username() == "root"
    assert run.parallelism == 1
    page = admin.get(answer["Location"]).content.decode()
    assert "Started echo over 2 instances." in page
    assert 'data-count="pending">2<' in page


def test_starting_a_run_from_a_csv_file(admin: Client, queue: Queue):
    upload = SimpleUploadedFile("orders.csv", b"order,region\n17,north\n", "text/csv")
    answer = admin.post(
        "/jobs/",
        {"job": "echo", "params_file": upload, "parallelism": "10", "queue": queue.pk,
         "on_complete_handler": "log"},
    )  # fmt: skip
    assert answer.status_code == 302
    assert [i.params for i in JobRun.objects.get().instances.all()] == [
        {"order": "17", "region": "north"}
    ]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"params_text": "[{"}, "This is not JSON"),
        ({"params_text": '{"n": 1}'}, "The parameters must be a list of JSON objects"),
        ({"params_text": "[]"}, "The parameter list is empty"),
        ({"params_text": ""}, "Type the parameters or choose a file"),
        ({"params_text": "[{}]", "parallelism": "0"}, "greater than or equal to 1"),
        ({"params_text": "[{}]", "job": "nope"}, "Select a valid choice"),
    ],
)
def test_bad_input_is_shown_on_the_form_and_starts_nothing(
    admin: Client, queue: Queue, fields: dict[str, Any], message: str
):
    body = {"job": "echo", "parallelism": "10", "queue": queue.pk, "on_complete_handler": "log",
            **fields}  # fmt: skip
    answer = admin.post("/jobs/", body)
    assert answer.status_code == 422
    assert message in answer.content.decode()
    assert JobRun.objects.count() == 0


def test_the_runs_list_filters_by_job_and_state(admin: Client, queue: Queue):
    done = ended_run(queue)
    running = runs.start("echo", [{}, {}], parallelism=1, queue=queue)

    everything = admin.get("/jobs/runs/").content.decode()
    assert f"/jobs/runs/{done.pk}/" in everything
    assert f"/jobs/runs/{running.pk}/" in everything
    active = admin.get("/jobs/runs/", {"state": "active"}).content.decode()
    assert f"/jobs/runs/{running.pk}/" in active
    assert f"/jobs/runs/{done.pk}/" not in active
    assert "No run matches these filters" in admin.get("/jobs/runs/", {"job": "x"}).content.decode()


def test_a_run_page_shows_counts_failures_and_what_can_be_done(admin: Client, queue: Queue):
    run = ended_run(queue)

    page = admin.get(f"/jobs/runs/{run.pk}/").content.decode()

    assert "completed with errors" in page
    assert 'data-count="completed">2<' in page
    assert 'data-count="errored">1<' in page
    assert "KeyError: &#x27;sku&#x27;" in page
    assert 'id="run-retry"' in page
    assert 'id="run-pause"' not in page
    assert 'id="run-cancel"' not in page
    errored = admin.get(f"/jobs/runs/{run.pk}/", {"state": "errored"}).content.decode()
    assert errored.count('data-state="errored"') == 1


def test_retry_failed_from_the_page_sends_the_failure_again(admin: Client, queue: Queue):
    run = ended_run(queue)
    answer = admin.post(f"/jobs/runs/{run.pk}/retry-failed", follow=True)
    assert "Run retry failed: done." in answer.content.decode()
    run.refresh_from_db()
    assert run.state == RunState.FINISHING
    assert run.instances.get(index=1).state == InstanceState.PENDING


def test_an_action_the_state_forbids_is_explained(admin: Client, queue: Queue):
    run = ended_run(queue)
    answer = admin.post(f"/jobs/runs/{run.pk}/pause", follow=True)
    assert "Not done: A completed with errors run cannot become paused." in answer.content.decode()
    assert admin.post(f"/jobs/runs/{run.pk}/explode").status_code == 302


def test_an_instance_page_shows_its_parameters_and_error(admin: Client, queue: Queue):
    run = ended_run(queue)
    failed = run.instances.get(index=1)
    page = admin.get(f"/jobs/runs/{run.pk}/instances/{failed.pk}/").content.decode()
    assert "&quot;n&quot;: 1" in page
    assert "<strong>KeyError</strong>" in page
    assert "Traceback …" in page
    other = runs.start("echo", [{}], queue=queue)
    assert admin.get(f"/jobs/runs/{other.pk}/instances/{failed.pk}/").status_code == 404


def test_results_download_as_json_and_csv(admin: Client, queue: Queue):
    run = ended_run(queue)

    answer = admin.get(f"/jobs/runs/{run.pk}/results.json")
    document = json.loads(b"".join(answer.streaming_content))
    assert [(i["index"], i["state"]) for i in document["instances"]] == [
        (0, "completed"), (1, "errored"), (2, "completed"),
    ]  # fmt: skip
    assert document["instances"][0]["result"] == {"n": 0}

    answer = admin.get(f"/jobs/runs/{run.pk}/results.csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(answer.streaming_content).decode())))
    assert [(r["index"], r["error_type"]) for r in rows] == [("0", ""), ("1", "KeyError"),
                                                             ("2", "")]  # fmt: skip
    assert json.loads(rows[1]["params"]) == {"n": 1}
    assert admin.get(f"/jobs/runs/{run.pk}/results.xml").status_code == 404


def test_unknown_runs_are_404(admin: Client):
    assert admin.get("/jobs/runs/5b8a3f0e-0000-4000-8000-000000000000/").status_code == 404
    assert admin.get("/jobs/runs/not-a-uuid/").status_code == 404


def test_the_progress_stream_sends_the_run_summary(admin: Client, client: Client, queue: Queue):
    run = runs.start("echo", [{}, {}], parallelism=1, queue=queue)
    answer = admin.get(f"/streams/jobs/{run.pk}")
    assert answer["Content-Type"] == "text/event-stream"
    body = b"".join(answer.streaming_content).decode()
    data = next(line[6:] for line in body.splitlines() if line.startswith("data: "))
    assert "event: progress" in body
    summary = json.loads(data)
    assert summary["state"] == "active"
    assert summary["counts"]["pending"] == 2
    missing = admin.get("/streams/jobs/5b8a3f0e-0000-4000-8000-000000000000")
    assert missing.status_code == 404


def test_the_dashboard_lists_runs_in_progress(admin: Client, queue: Queue):
    running = runs.start("echo", [{}, {}], parallelism=1, queue=queue)
    ended_run(queue)
    page = admin.get("/").content.decode()
    assert 'id="dashboard-jobs"' in page
    assert f"/jobs/runs/{running.pk}/" in page


def test_a_run_in_progress_follows_its_stream_on_the_streams_process(
    admin: Client, queue: Queue, settings: Any
):
    settings.QUAYMASTER_STREAMS_URL = "http://127.0.0.1:8001/streams/"
    run = runs.start("echo", [{}, {}], parallelism=1, queue=queue)
    page = admin.get(f"/jobs/runs/{run.pk}/").content.decode()
    assert f'"http://127.0.0.1:8001/streams/jobs/{run.pk}"' in page


def test_a_run_started_with_a_priority_shows_it_and_whether_the_queue_uses_it(
    admin: Client, queue: Queue
):
    answer = admin.post(
        "/jobs/",
        {"job": "echo", "params_text": "[{}]", "parallelism": "1", "priority": "9",
         "queue": queue.pk, "on_complete_handler": "log"},
    )  # fmt: skip
    run = JobRun.objects.get()
    assert run.priority == 9
    page = admin.get(answer["Location"]).content.decode()
    assert 'data-honoured="true">priority 9 (The database queue claims' in page

    kafka = Queue.objects.create(name="events", type="kafka", partitions=3)
    on_kafka = runs.start("echo", [{}], priority=5, queue=kafka)
    page = admin.get(f"/jobs/runs/{on_kafka.pk}/").content.decode()
    assert 'data-honoured="false">priority 5 (not used here: Kafka has no message' in page


def test_a_priority_outside_0_to_9_is_refused_on_the_form(admin: Client, queue: Queue):
    answer = admin.post(
        "/jobs/",
        {"job": "echo", "params_text": "[{}]", "parallelism": "1", "priority": "10",
         "queue": queue.pk, "on_complete_handler": "log"},
    )  # fmt: skip
    assert answer.status_code == 422
    assert "less than or equal to 9" in answer.content.decode()
    assert JobRun.objects.count() == 0
