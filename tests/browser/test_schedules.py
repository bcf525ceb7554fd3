"""The schedules pages in a real browser: an admin creates a cron schedule that starts a job,
sees its next fire in the schedule's time zone, runs it now, follows the fire to the run it
started, and sees that run end (the relay and a worker run in threads)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from jobs.models import JobRun, Schedule
from queues import services
from tests.browser.conftest import PHONE, log_in, make_user, screenshot
from tests.jobs.moving_parts import StartWorker, platform_threads

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WAIT_MS = 15_000


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


@pytest.fixture
def platform(live_server: Any) -> Iterator[StartWorker]:
    with platform_threads() as start:
        yield start


def test_an_admin_creates_a_schedule_runs_it_now_and_sees_the_run(
    page: Any, platform: StartWorker, settings: Any, live_server: Any
) -> None:
    settings.QUAYMASTER_STREAMS_URL = live_server.url + "/streams/"
    queue = services.create_queue(name=settings.QUAYMASTER_JOB_QUEUE, type="database")
    make_user("root", admin=True)
    log_in(page, "root")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Schedules").click()
    expect(page.locator("#schedules-empty")).to_be_visible()
    page.get_by_role("link", name="New schedule").click()

    form = page.locator("#schedule-form")
    form.get_by_label("Name").fill("nightly echo")
    form.get_by_label("Job").select_option("echo")
    form.get_by_label("Parameters (JSON)").fill('[{"n": 1}, {"n": 2}]')
    form.get_by_label("Cron").fill("0 2 * *")  # one field short
    form.get_by_label("Time zone").fill("Europe/Lisbon")
    form.get_by_role("button", name="Save schedule").click()
    expect(form.locator(".field.invalid")).to_contain_text("is not a cron expression")
    assert Schedule.objects.count() == 0

    form.get_by_label("Cron").fill("0 2 * * *")
    form.get_by_role("button", name="Save schedule").click()
    expect(page).to_have_url(re.compile(r"/schedules/\d+/$"))
    expect(page.locator("#schedule-next")).to_contain_text("02:00")
    expect(page.locator("#schedule-next")).to_contain_text("(Europe/Lisbon)")
    screenshot(page, "schedule")

    platform(queue)
    page.get_by_role("button", name="Run now").click()
    expect(page).to_have_url(re.compile(r"/jobs/runs/[0-9a-f-]{36}/$"))
    run = JobRun.objects.get()
    assert run.trigger == "schedule"
    expect(page.locator("#run-state")).to_have_text("completed", timeout=WAIT_MS)

    page.goto("/schedules/")
    row = page.locator("#schedule-table tbody tr")
    expect(row).to_contain_text("nightly echo")
    expect(row).to_contain_text("started a run")
    screenshot(page, "schedules")
    page.set_viewport_size(PHONE)
    screenshot(page, "schedules-phone")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.get_by_role("link", name="nightly echo").click()
    expect(page.locator("#fire-table")).to_contain_text("(run now)")
    page.locator("#fire-table").get_by_role("link", name=re.compile("^run ")).click()
    expect(page).to_have_url(re.compile(f"/jobs/runs/{run.pk}/$"))
