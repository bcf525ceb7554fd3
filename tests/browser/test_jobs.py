"""The jobs pages in a real browser: an admin starts a run from the Jobs page with typed JSON
parameters, lands on the run's page, watches its progress bar move with the stream and reach
100%, sees the run end "completed with errors", and opens the failed instance to read its
parameters and error. The instances really run: the outbox relay and a worker execute them in
threads, against the live server's database.

The page and the stream are served by the same live server (WSGI): the stream sends one
summary and ends, and the EventSource reconnects after the ``retry:`` it was given.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from jobs.context import JobContext
from jobs.models import JobRun
from jobs.registry import job
from queues import services
from tests.browser.conftest import PHONE, log_in, make_user, screenshot
from tests.jobs import sample_jobs
from tests.jobs.moving_parts import StartWorker, platform_threads

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

#: A summary must show within a reconnect of the stream (a second) and a run of a few
#: instances, with a wide margin for a loaded machine.
STREAM_MS = 15_000

#: Held instances wait for this before they run; the test opens it.
gate = threading.Event()


@job("tests.browser.square")
def held_square(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Square ``n`` as ``tests.square`` does (raising when ``fail`` is set); with ``hold`` set,
    first wait until the test lets it go (30 s at most)."""
    if params.get("hold"):
        gate.wait(timeout=30)
    return sample_jobs.square(params, ctx)


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


@pytest.fixture
def platform(live_server: Any) -> Iterator[StartWorker]:
    """The relay and a worker in threads, on the live server's (transactional) database."""
    sample_jobs.calls.reset()
    gate.clear()
    with platform_threads() as start:
        yield start
        gate.set()  # a held instance must not keep its worker thread after a failed test


PARAMS = """[{"n": 1},
 {"n": 2},
 {"n": 3, "fail": true},
 {"n": 4},
 {"n": 5, "hold": true}]"""


def test_an_admin_starts_a_run_and_watches_it_end(
    page: Any, platform: StartWorker, settings: Any, live_server: Any
) -> None:
    # The streams process is the live server here (a long poll under WSGI, see streams.py).
    settings.QUAYMASTER_STREAMS_URL = live_server.url + "/streams/"
    queue = services.create_queue(
        name=settings.QUAYMASTER_JOB_QUEUE, type="database", max_attempts=2, visibility_timeout=10
    )
    services.create_queue(name="job-events", type="database")
    make_user("root", admin=True)
    log_in(page, "root")

    # The registered jobs, and the form that starts one.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Jobs").click()
    expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_visible()
    jobs_table = page.locator("#job-table")
    expect(jobs_table).to_contain_text("tests.browser.square")
    expect(jobs_table).to_contain_text("Return the instance's parameters unchanged.")  # echo
    jobs_table.get_by_role("link", name="Start tests.browser.square").click()
    form = page.locator("#start")
    expect(form.get_by_label("Job")).to_have_value("tests.browser.square")
    form.get_by_label("Parameters (JSON)").fill(PARAMS)
    form.get_by_label("Parallelism").fill("2")
    expect(form.get_by_label("Queue")).to_have_value(str(queue.pk))
    form.get_by_label("On complete").select_option(label="job-events")
    page.evaluate("document.activeElement.blur()")
    screenshot(page, "jobs-list")
    form.get_by_role("button", name="Start run").click()

    # The run's page, before any worker runs: nothing has ended yet.
    # (The form's "#start" follows the redirect, as a fragment does.)
    expect(page).to_have_url(re.compile(r"/jobs/runs/[0-9a-f-]{36}/(#start)?$"))
    run = JobRun.objects.get()
    assert (run.job, run.total, run.parallelism) == ("tests.browser.square", 5, 2)
    expect(page.locator(".messages")).to_contain_text("Started tests.browser.square over 5")
    bar = page.locator("#run-bar-wrap")
    expect(bar).to_have_attribute("aria-valuenow", "0")
    expect(page.locator("#run-state")).to_have_text("active")
    # Mark this document: the updates below must come through the stream, not a reload.
    page.evaluate("window.sameDocument = true")

    platform(queue)

    # Four instances end (one of them errored after its two attempts); the held one waits.
    expect(bar).to_have_attribute("aria-valuenow", "80", timeout=STREAM_MS)
    expect(page.locator("#run-bar")).to_have_attribute("style", re.compile(r"width: 80%"))
    expect(page.locator("#run-percent")).to_have_text("80%")
    expect(page.locator('[data-count="completed"]')).to_have_text("3")
    expect(page.locator('[data-count="errored"]')).to_have_text("1")
    expect(page.locator('[data-count="in_progress"]')).to_have_text("1", timeout=STREAM_MS)
    assert page.evaluate("window.sameDocument") is True
    screenshot(page, "job-run-in-progress")

    # Meanwhile, in another tab: the dashboard's panel and the runs list show it in progress.
    other = page.context.new_page()
    other.goto("/")
    panel = other.locator("#dashboard-jobs")
    expect(panel).to_contain_text("tests.browser.square")
    expect(panel).to_contain_text("80% (4 of 5)")
    screenshot(other, "jobs-dashboard")
    other.goto("/jobs/runs/")
    expect(other.locator("#run-table tbody tr")).to_have_count(1)
    expect(other.locator("#run-table tbody tr")).to_contain_text("finishing")
    screenshot(other, "job-runs")
    other.set_viewport_size(PHONE)
    screenshot(other, "job-runs-phone")
    other.close()

    # The last one ends: the stream sends 100% and the ended run, and the page reloads.
    page.evaluate(
        """() => {
          const wrap = document.getElementById("run-bar-wrap");
          new MutationObserver(() => sessionStorage.setItem("streamed", wrap.ariaValueNow))
            .observe(wrap, {attributes: true, attributeFilter: ["aria-valuenow"]});
        }"""
    )
    gate.set()
    # Only the page rendered for the ended run has a "done" bar.
    expect(page.locator("#run-bar")).to_have_class(re.compile(r"\bdone\b"), timeout=STREAM_MS)
    page.wait_for_load_state()
    assert page.evaluate("window.sameDocument") is None  # reloaded
    assert page.evaluate("sessionStorage.getItem('streamed')") == "100"
    expect(page.locator("#run-state")).to_have_text("completed with errors")
    expect(bar).to_have_attribute("aria-valuenow", "100")
    expect(page.locator('[data-count="completed"]')).to_have_text("4")
    expect(page.locator('[data-count="errored"]')).to_have_text("1")
    expect(page.locator("#run-retry")).to_be_visible()
    failures = page.locator("#failure-table tbody tr")
    expect(failures).to_have_count(1)
    expect(failures).to_contain_text('"fail": true')
    expect(failures).to_contain_text("ValueError: instance 3 always fails")
    expect(page.locator("#instance-table tbody tr")).to_have_count(5)
    expect(page.locator("#run-history")).to_contain_text("completed_with_errors")
    screenshot(page, "job-run")
    page.set_viewport_size(PHONE)
    screenshot(page, "job-run-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    # The failed instance: its parameters and its error.
    page.set_viewport_size({"width": 1280, "height": 860})
    failures.get_by_role("link", name="2").click()
    expect(page.get_by_role("heading", name=re.compile(r"instance #2"))).to_be_visible()
    expect(page.locator("#instance-params")).to_contain_text('"fail": true')
    expect(page.locator("#instance-params")).to_contain_text('"n": 3')
    error = page.locator("#instance-error")
    expect(error).to_contain_text("ValueError: instance 3 always fails")
    expect(error).to_contain_text("After 2 attempts.")
    expect(page.locator("#instance-traceback")).to_contain_text("Traceback")
    screenshot(page, "job-instance")

    # Every instance ran once, except the failing one: once per attempt.
    assert sorted(sample_jobs.calls.per_instance.values()) == [1, 1, 1, 1, 2]
