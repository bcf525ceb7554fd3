"""Layouts that hold: every back-office page an admin can reach, in a laptop's 1280 by 900 px
window and a phone's 390 by 844 px, is no wider than the window and has no form control lying
on another.

The pages are found the way a person finds them: from the dashboard, following every link
(the main navigation, lists, tabs, a record, a run…) over the demo's data that
``bootstrap_demo`` makes, plus what the demo does not make by itself (a dead letter, a job run,
a worker, log lines, a webhook endpoint, an API token). Each kind of page is visited once per
window: a link is one kind of page per view, and per table or queue where the page shows one.
Closed ``<details>`` (the records list's Filters panel among them) are opened and the page is
checked again. The records lists with their Filters open are saved as screenshots.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.urls import Resolver404, resolve

from accounts.models import ApiToken
from accounts.roles import Role
from alerts import evaluator
from alerts.services import save_rule
from jobs import runs
from queues import pausing, services
from queues.backends import get_backend
from queues.demo import DEMO_QUEUE
from queues.messages import OutgoingMessage
from queues.models import Queue, QueueLink
from queues.replay import service as replays
from tests.browser.conftest import PASSWORD, PHONE, log_in, screenshot
from workers.endpoints import create_endpoint
from workers.models import EventKind, Level, LifecycleEvent, WorkerProcess
from zstorage import records
from zstorage.models import Table

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LAPTOP_WINDOW = {"width": 1280, "height": 900}
WINDOWS = {"laptop": LAPTOP_WINDOW, "phone": PHONE}

#: Back-office URL namespaces; anything else (the API, its docs, Django's admin) is not ours.
NAMESPACES = {"backoffice", "jobs", "operations"}
#: Views a link may point at that are not pages: downloads, streams, htmx fragments.
NOT_PAGES = {
    "backoffice:export",
    "backoffice:record-lookup",
    "backoffice:record-validate",
    "backoffice:field-options",
    "backoffice:rule-params",
    "backoffice:link-preview",
    "backoffice:queue-stats",
    "backoffice:stream-heartbeat",
    "jobs:run-results",
    "jobs:run-action",
    "jobs:stream",
    "operations:stream-lifecycle",
}
#: Kinds of page are told apart by these URL arguments (a table's pages differ by its fields,
#: a queue's by its settings); a record, a field or a run of the same kind is the same page.
KIND_ARGUMENTS = ("slug", "queue_id")
#: A crawl that finds more than this has gone astray (a link per record, say).
MAX_PAGES = 150

#: What is wrong with a page's layout, as readable lines (see the script).
LAYOUT_PROBLEMS = (Path(__file__).parent / "layout_problems.js").read_text()

#: Opens every closed <details> of a page; returns how many there were.
OPEN_DETAILS = """() => {
  const closed = [...document.querySelectorAll("details:not([open])")];
  closed.forEach((d) => { d.open = true; });
  return closed.length;
}"""

#: The links of a page, but for downloads.
LINKS = """() => [...document.querySelectorAll("a[href]")]
  .filter((a) => !a.hasAttribute("download")).map((a) => a.href)"""

#: htmx fragments loaded with the page (a queue's figures, a form's options) have arrived.
HTMX_IDLE = "() => !document.querySelector('.htmx-request, .htmx-settling, .htmx-swapping')"


def page_kind(url: str, origin: str) -> tuple[str, ...] | None:
    """What kind of back-office page a link opens, or None for a link to leave alone."""
    parts = urlsplit(url)
    if f"{parts.scheme}://{parts.netloc}" != origin:
        return None
    try:
        match = resolve(parts.path)
    except Resolver404:
        return None
    if match.namespace not in NAMESPACES or match.view_name in NOT_PAGES:
        return None
    return (match.view_name, *(str(match.kwargs.get(name, "")) for name in KIND_ARGUMENTS))


@pytest.fixture
def demo(settings: Any, live_server: Any) -> User:
    """The demo, as ``make run`` makes it, and a little of everything it leaves empty."""
    settings.QUAYMASTER_STREAMS_URL = live_server.url + "/streams/"
    settings.QUAYMASTER_ADMIN_USERNAME = "root"
    settings.QUAYMASTER_ADMIN_PASSWORD = PASSWORD
    Group.objects.get_or_create(name=Role.ADMINS)  # a transactional test before flushed it
    Group.objects.get_or_create(name=Role.BUSINESS_USERS)
    call_command("bootstrap_demo", stdout=io.StringIO())
    admin = User.objects.get(username="root")

    orders = Table.objects.get(slug="orders")
    order = orders.records.order_by("pk").first()
    assert order is not None
    # An edit: history on the record's page, a row in the outbox (no relay runs here).
    records.update_record(orders, order.pk, {"status": "paid"}, actor=admin)

    queue = Queue.objects.get(name=DEMO_QUEUE)
    message = OutgoingMessage.new({"handler": "log", "order": order.pk})
    services.publish(queue, [message])
    with get_backend(queue) as backend:
        (delivery,) = backend.fetch(max_messages=1, wait_seconds=0)
        backend.dead_letter(delivery, "ValueError: the carrier refused the parcel")

    runs.start(
        "demo.city_report", [{"city": "Lisbon"}, {"city": "Porto"}], parallelism=1, user=admin
    )
    # A replay of the orders link: its page with the progress and Cancel.
    replays.start(QueueLink.objects.filter(table=orders).first(), {}, 10, user=admin)
    worker = WorkerProcess.objects.create(
        queue=queue, host="worker-1.internal", pid=4242, concurrency=10, processed=12
    )
    LifecycleEvent.objects.create(
        queue=queue.name, message_id=message.message_id, handler="log", worker=worker,
        kind=EventKind.FAILED, level=Level.ERROR, attempt=5, duration_ms=31,
        detail="ValueError: the carrier refused the parcel " * 3,
    )  # fmt: skip
    create_endpoint(
        name="crm", url="https://crm.example.com/hooks", secret="s3cret-for-tests", queues=[queue]
    )
    ApiToken.issue(admin, "Order intake")
    # An alert rule with an open alert (the dead letter above), and a queue paused after failures.
    save_rule(
        None, name="Dead letters", kind="dead_letters", params={"threshold": 0}, queue=queue,
        job="", notify_emails=["ops@example.com"], quiet_minutes=60,
    )  # fmt: skip
    pausing.pause(queue.pk, 5, "ValueError: the carrier refused the parcel")
    evaluator.evaluate()
    return admin


def test_every_page_fits_the_window_and_no_control_covers_another(
    browser: Any, live_server: Any, demo: User
) -> None:
    origin = live_server.url
    problems: list[str] = []
    pages: list[str] = []  # found at the first window, visited again at the second

    for window_name, viewport in WINDOWS.items():
        context = browser.new_context(base_url=origin, viewport=viewport)
        context.set_default_timeout(15_000)
        try:
            page = context.new_page()
            log_in(page, "root")
            if not pages:
                pages = crawl(page, origin, problems, window_name)
            else:
                for url in pages:
                    visit(page, url, problems, window_name)
            for slug in ("orders", "customers"):
                # The records lists with their Filters panel open, for a person to look at.
                page.goto(f"/records/{slug}/")
                page.get_by_text("Filters", exact=True).click()
                screenshot(page, f"layout-{slug}-filters-{window_name}")
        finally:
            context.close()

    assert len(pages) > 40, f"the crawl found only {len(pages)} pages: {pages}"
    assert not problems, "Layouts that do not hold:\n" + "\n".join(problems)


def crawl(page: Any, origin: str, problems: list[str], window_name: str) -> list[str]:
    """Visit every kind of page reachable from the dashboard once; returns them in order."""
    start = origin + "/"
    seen = {page_kind(start, origin)}
    queue, visited = [start], []
    while queue:
        url = queue.pop(0)
        visited.append(url)
        for link in visit(page, url, problems, window_name):
            kind = page_kind(link, origin)
            if kind is not None and kind not in seen:
                seen.add(kind)
                queue.append(link.split("#")[0])
        assert len(visited) <= MAX_PAGES, f"the crawl went astray: {visited}"
    return visited


def visit(page: Any, url: str, problems: list[str], window_name: str) -> list[str]:
    """Open one page, note its layout problems (as loaded and with every <details> open) and
    return its links."""
    response = page.goto(url)
    path = urlsplit(url).path
    where = f"{window_name} {path}"
    if response is None or response.status != 200:
        problems.append(f"{where}: answered {response.status if response else 'nothing'}")
        return []
    page.wait_for_function(HTMX_IDLE)
    problems.extend(f"{where}: {problem}" for problem in page.evaluate(LAYOUT_PROBLEMS))
    if page.evaluate(OPEN_DETAILS):
        page.wait_for_function(HTMX_IDLE)
        found = page.evaluate(LAYOUT_PROBLEMS)
        problems.extend(
            f"{where} (details open): {p}" for p in found if f"{where}: {p}" not in problems
        )
    links: list[str] = page.evaluate(LINKS)
    return links
