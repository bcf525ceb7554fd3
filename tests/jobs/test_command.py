"""``manage.py start_job``: a run from a JSON or CSV file, and a clear error for bad input."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from jobs.models import JobRun, Trigger
from queues.models import Queue
from tests.jobs import sample_jobs  # noqa: F401  (registers the test jobs)

pytestmark = pytest.mark.django_db


def test_a_json_file_starts_a_run(job_queue: Queue, tmp_path: Path):
    params = tmp_path / "params.json"
    params.write_text('[{"n": 1}, {"n": 2}]')
    out = StringIO()

    call_command("start_job", "tests.square", "--params", str(params), "--parallelism", "1",
                 stdout=out)  # fmt: skip

    run = JobRun.objects.get()
    assert f"Started run {run.pk} of tests.square: 2 instances" in out.getvalue()
    assert run.trigger == Trigger.COMMAND
    assert run.parallelism == 1
    assert [i.params for i in run.instances.order_by("index")] == [{"n": 1}, {"n": 2}]


def test_a_csv_file_gives_one_instance_per_row_keyed_by_the_header(
    job_queue: Queue, tmp_path: Path
):
    params = tmp_path / "orders.csv"
    params.write_text("order,region\n17,north\n18,south\n", encoding="utf-8")

    call_command("start_job", "echo", "--params", str(params), stdout=StringIO())

    run = JobRun.objects.get()
    assert [i.params for i in run.instances.order_by("index")] == [
        {"order": "17", "region": "north"},
        {"order": "18", "region": "south"},
    ]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("params.json", "{", "invalid_parameters: The file is not JSON"),
        ("params.json", '{"n": 1}', "invalid_parameters: The parameters must be a list"),
        ("params.csv", "", "invalid_parameters: The CSV file has no header row"),
        ("params.json", "[]", "invalid_parameters: The parameter list is empty"),
    ],
)
def test_bad_files_are_refused_with_the_reason(
    job_queue: Queue, tmp_path: Path, name: str, content: str, message: str
):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(CommandError, match=message):
        call_command("start_job", "echo", "--params", str(path))
    assert JobRun.objects.count() == 0


def test_an_unknown_job_and_a_missing_file_are_refused(job_queue: Queue, tmp_path: Path):
    path = tmp_path / "params.json"
    path.write_text("[{}]")
    with pytest.raises(CommandError, match="unknown_job: No job is registered as 'nope'"):
        call_command("start_job", "nope", "--params", str(path))
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("start_job", "echo", "--params", str(tmp_path / "missing.json"))


def test_a_priority_is_given_with_priority(job_queue: Queue, tmp_path: Path):
    params = tmp_path / "params.json"
    params.write_text('[{"n": 1}]')
    call_command("start_job", "tests.square", "--params", str(params), "--priority", "6",
                 stdout=StringIO())  # fmt: skip
    assert JobRun.objects.get().priority == 6
    with pytest.raises(CommandError, match="invalid_run_options"):
        call_command("start_job", "tests.square", "--params", str(params), "--priority", "10")
