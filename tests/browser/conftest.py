"""Browser tests drive Debian's Chromium through Playwright's sync API against pytest-django's
live server. Playwright's own browser download is not used (see platform/install-chromium).

Without /usr/bin/chromium the tests skip with the reason, or fail under
QUAYMASTER_REQUIRE_SERVICES=1 (CI), like every other test that needs a real service.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.db import connections

from tests.services import missing_service

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PASSWORD = "a long test password"
LAPTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch: pytest.MonkeyPatch) -> None:
    """Playwright's sync API runs an event loop in the test's thread, so Django would refuse
    the test body's ORM calls as "async unsafe"; these tests are plainly synchronous."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def browser(live_server: Any) -> Iterator[Any]:
    """A Chromium for one test. Not shared across tests on purpose: while Playwright runs, its
    event loop is "running" in the main thread, and Django would then refuse the ORM calls of
    every later test in the session (pytest-django's database setup included)."""
    if not CHROMIUM.exists():
        missing_service(f"Chromium: {CHROMIUM} is missing (run platform/install-chromium)")
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
    except Exception:
        playwright.stop()
        raise
    yield chromium
    chromium.close()
    # While Playwright runs, the test body's ORM calls get a database connection of their own
    # (Django keeps connections per context, and Playwright's loop makes a new one); close it
    # here, or PostgreSQL refuses to drop the test database at the end of the session.
    connections.close_all()
    playwright.stop()


@pytest.fixture
def new_page(browser: Any, live_server: Any) -> Iterator[Any]:
    """Make pages in fresh browser contexts (separate cookies) on the live server."""
    contexts = []

    def make(viewport: dict[str, int] = LAPTOP) -> Any:
        context = browser.new_context(base_url=live_server.url, viewport=viewport)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: Any) -> Any:
    return new_page()


def make_user(username: str, *, admin: bool = False, groups: tuple[str, ...] = ()) -> User:
    user = User.objects.create_user(username, password=PASSWORD)
    # get_or_create: a transactional test before this one flushed what the migrations made.
    role = "admins" if admin else "business users"
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    for name in groups:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    return user


def log_in(page: Any, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/")


def screenshot(page: Any, name: str) -> Path:
    """Save the whole page for a person to look at (test-artifacts/ is not committed)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
