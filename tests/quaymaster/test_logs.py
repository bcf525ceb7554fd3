"""LOG_FORMAT=json: every line a JSON object carrying the ids of what it is about, so that one
message is followed by its id from the web request that published it, through the relay, to
the worker that handled it (quaymaster/logs.py)."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from rest_framework.test import APIClient

from accounts.models import ApiToken
from quaymaster import logs
from queues.models import OutboxMessage, Queue
from queues.relay import Relay
from queues.services import publishers
from tests.queues.outbox_helpers import linked_table
from tests.workers.helpers import FAST
from tests.workers.test_processes import child_database_url
from workers.context import Context
from workers.options import WorkerOptions
from workers.registry import Registry
from workers.runtime import Worker

ROOT = Path(__file__).resolve().parents[2]
Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def json_lines() -> Iterator[Lines]:
    """The process logs as with LOG_FORMAT=json, into a buffer: its lines, each parsed (a line
    that is not JSON fails the test). The suite's own logging is back afterwards."""
    stream = io.StringIO()
    logging.config.dictConfig(logs.logging_config("json", "INFO"))
    [handler] = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        logs.clear()
        logging.config.dictConfig(logs.logging_config(settings.LOG_FORMAT, "INFO"))
        logging.config.dictConfig(settings.LOGGING)


@pytest.fixture(autouse=True)
def _close_publishers() -> Iterator[None]:
    publishers.close()
    yield
    publishers.close()


def api_client() -> tuple[APIClient, ApiToken]:
    user = User.objects.create_superuser("integrator")
    token, raw = ApiToken.issue(user, "logs")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client, token


def wait_for_line(
    lines: Lines, match: Callable[[dict[str, Any]], bool], what: str, timeout: float = 20
) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [line for line in lines() if match(line)]
        if found:
            return found[0]
        time.sleep(0.05)  # a pause between probes
    pytest.fail(f"no log line {what} within {timeout} s; lines: {lines()}")


def carries(line: dict[str, Any], message_id: str) -> bool:
    return line.get("message_id") == message_id or message_id in line.get("message_ids", [])


# -- the web process ------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_api_publish_logs_its_message_ids_with_the_request_and_token_ids(
    json_lines: Lines,
) -> None:
    queue = Queue.objects.create(name="logged", type="database")
    client, token = api_client()

    answer = client.post(
        f"/api/v1/zstorage/queue/a/{queue.name}/publish",
        {"handler": "log", "n": 1},
        format="json",
        HTTP_X_REQUEST_ID="client-req-42",
    )

    assert answer.status_code == 201, answer.content
    assert answer["X-Request-ID"] == "client-req-42"
    message_id = answer.json()["message-id"]
    [line] = [line for line in json_lines() if carries(line, message_id)]
    assert line["logger"] == "queues.api"
    assert line["level"] == "info"
    assert line["request_id"] == "client-req-42"
    assert line["token_id"] == token.pk
    assert line["queue"] == queue.name
    assert line["message_ids"] == [message_id]
    assert {"time", "message", "pid"} <= set(line)


@pytest.mark.django_db
def test_a_request_gets_an_id_unless_it_brings_a_short_token_of_its_own(
    json_lines: Lines,
) -> None:
    client = APIClient()

    made = client.get("/healthz")["X-Request-ID"]
    again = client.get("/healthz")["X-Request-ID"]
    kept = client.get("/healthz", HTTP_X_REQUEST_ID="edge-7f3a:12")["X-Request-ID"]
    unfit = [
        client.get("/healthz", HTTP_X_REQUEST_ID=value)["X-Request-ID"]
        for value in ("two words", "x" * 200, '"quoted"', "-leading-dash")
    ]
    missing = client.get("/nowhere-at-all", HTTP_X_REQUEST_ID="trace-404")

    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert re.fullmatch(r"[0-9a-f]{32}", again)
    assert made != again
    assert kept == "edge-7f3a:12"
    assert all(re.fullmatch(r"[0-9a-f]{32}", value) for value in unfit), unfit
    assert missing.status_code == 404
    [warning] = [line for line in json_lines() if line["logger"] == "django.request"]
    assert warning["request_id"] == "trace-404", "Django's own line about the answer too"


def test_log_format_and_level_are_checked_at_start() -> None:
    with pytest.raises(ImproperlyConfigured, match="LOG_FORMAT"):
        logs.logging_config("xml")
    with pytest.raises(ImproperlyConfigured, match="LOG_LEVEL"):
        logs.logging_config("json", "LOUD")


def test_text_lines_stay_as_they_were_with_the_bound_ids_after_the_message() -> None:
    formatter = logs.formatter("text")
    record = logging.LogRecord("queues.relay", logging.INFO, __file__, 1, "sent %d", (3,), None)
    assert re.fullmatch(r"\S+ \S+ INFO queues\.relay: sent 3", formatter.format(record))
    with logs.bound(queue="orders", message_id="m-1"):
        line = formatter.format(record)
    assert line.endswith("INFO queues.relay: sent 3 message_id=m-1 queue=orders")


# -- web, relay and worker in this process --------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_record_write_is_followed_by_its_message_id_through_relay_and_worker(
    json_lines: Lines,
) -> None:
    queue = Queue.objects.create(name="followed", type="database", visibility_timeout=5)
    table = linked_table(queue, handler="on_order")
    client, token = api_client()
    registry = Registry()

    @registry.handler("on_order")
    def on_order(message: dict[str, Any], ctx: Context) -> None:
        logging.getLogger("tests.on_order").info("order %s", message["data"]["number"])
        ctx.ack()

    written = client.post(
        f"/api/v1/zstorage/tables/{table.slug}/records/",
        {"number": "A-1"},
        format="json",
        HTTP_X_REQUEST_ID="order-write-1",
    )
    assert written.status_code == 201, written.content
    message_id = str(OutboxMessage.objects.get(queue=queue).message_id)
    relay = Relay(listen=False)
    try:
        assert relay.run_once() == 1
    finally:
        relay.close()
    worker = Worker(queue, registry=registry, options=WorkerOptions(**FAST))
    worker.start()
    try:
        done = wait_for_line(
            json_lines,
            lambda line: line["logger"] == "workers.messages" and carries(line, message_id),
            f"from the worker about {message_id}",
        )
    finally:
        worker.stop(drain_seconds=5)

    following = [line for line in json_lines() if carries(line, message_id)]
    assert [line["logger"] for line in following] == [
        "queues.outbox",
        "queues.relay",
        "tests.on_order",
        "workers.messages",
    ]
    outbox, relayed, handler_line, _ = following
    assert outbox["request_id"] == "order-write-1"
    assert outbox["token_id"] == token.pk
    assert relayed["queue"] == queue.name
    assert "request_id" not in relayed
    assert handler_line["message"] == "order A-1"
    assert handler_line["queue"] == queue.name
    assert handler_line["handler"] == "on_order"
    assert handler_line["attempt"] == 1
    assert done["outcome"] == "ack"
    assert isinstance(done["duration_ms"], int)
    assert "request_id" not in done, "a message's ids do not outlive it on the worker thread"


@pytest.mark.django_db(transaction=True)
def test_a_job_instance_is_logged_with_its_run_id_from_release_to_worker(
    json_lines: Lines,
) -> None:
    from jobs import runs
    from tests.jobs import sample_jobs  # registers tests.square
    from tests.jobs.conftest import make_queue, wait_until_ended
    from tests.jobs.moving_parts import platform_threads

    sample_jobs.calls.reset()
    queue = make_queue("logged-jobs")
    with platform_threads() as start:
        start(queue, concurrency=1)
        run = wait_until_ended(runs.start("tests.square", [{"n": 3}], queue=queue.name))

    [released] = [line for line in json_lines() if line["logger"] == "jobs.dispatch"]
    assert released["run_id"] == str(run.pk)
    assert released["job"] == "tests.square"
    [message_id] = released["message_ids"]
    [done] = [
        line
        for line in json_lines()
        if line["logger"] == "workers.messages" and carries(line, message_id)
    ]
    instance = run.instances.get()
    assert done["run_id"] == str(run.pk)
    assert done["instance_id"] == str(instance.pk)
    assert done["handler"] == "jobs.instance"
    assert done["outcome"] == "ack"


# -- real processes -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_json_logs_of_relay_and_worker_processes_follow_one_message(
    json_lines: Lines, tmp_path: Path
) -> None:
    """``manage.py relay`` and ``manage.py runworker`` with LOG_FORMAT=json: every line they
    print is JSON, and the message written here is in both, by its id."""
    queue = Queue.objects.create(name="processes", type="database", visibility_timeout=5)
    table = linked_table(queue, handler="log")
    env = {
        **os.environ,
        "DATABASE_URL": child_database_url(),
        "LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
    }
    outputs = [tmp_path / "relay.log", tmp_path / "worker.log"]
    commands = [
        ["relay", "--no-listen"],
        ["runworker", queue.name, "--concurrency", "1", "--poll-seconds", "0.5"],
    ]
    children = []
    for command, output in zip(commands, outputs, strict=True):
        with output.open("wb") as sink:
            children.append(
                subprocess.Popen(
                    [sys.executable, "manage.py", *command],
                    cwd=ROOT,
                    env=env,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        from zstorage import records

        with logs.bound(request_id="proc-req-1"):
            records.create_record(table, {"number": "P-1"})
        message_id = str(OutboxMessage.objects.get(queue=queue).message_id)

        def child_lines() -> list[dict[str, Any]]:
            found = []
            for output in outputs:
                text = output.read_text()
                complete = text[: text.rfind("\n") + 1]
                found += [
                    json.loads(line)
                    for line in complete.splitlines()
                    if line.startswith("{")  # the commands' own stdout lines are not logs
                ]
            return found

        wait_for_line(
            child_lines,
            lambda line: line["logger"] == "workers.messages" and carries(line, message_id),
            f"from the worker process about {message_id}",
            timeout=60,  # two Django processes start on a busy machine
        )
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(timeout=30)

    [written] = [line for line in json_lines() if carries(line, message_id)]
    assert written["request_id"] == "proc-req-1"
    following = [line for line in child_lines() if carries(line, message_id)]
    assert [line["logger"] for line in following] == [
        "queues.relay",
        "workers.handlers",  # the log handler's ctx.log line
        "workers.messages",
    ]
    relayed, handled, done = following
    assert relayed["pid"] == children[0].pid
    assert handled["pid"] == done["pid"] == children[1].pid
    assert handled["queue"] == done["queue"] == queue.name
    assert handled["handler"] == done["handler"] == "log"
    assert done["outcome"] == "ack"
    for output in outputs:
        for line in output.read_text().splitlines():
            assert line.startswith("{") or not line.strip() or _command_line(line), line


def _command_line(line: str) -> bool:
    """What the commands write to stdout themselves (not log lines)."""
    return line.startswith(("relay ", "worker:", "worker ", "Queue "))
