"""A queue with "pause consumption after N consecutive handler failures": after N failures in a
row its worker stops fetching, the queue is paused (the page and ``runworkers`` see it) and an
alert opens and notifies; an admin's resume clears it, resolves the alert, and the worker
fetches again. Counting costs no query on the success path."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alerts.models import Alert, AlertRule, AlertState
from queues import pausing, services
from queues.models import DatabaseMessage, MessageState, Queue
from tests.workers.helpers import publish, wait_for
from tests.workers.test_supervisor import Harness
from workers.middleware import PauseAfterFailures
from workers.registry import Registry

pytestmark = pytest.mark.django_db


@pytest.mark.django_db(transaction=True)  # the worker's threads must see committed rows
def test_consecutive_failures_pause_the_queue_stop_fetching_and_alert(
    registry: Registry, start_worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    AlertRule.objects.update_or_create(
        name="Queue paused", defaults={"kind": "queue_paused", "notify_emails": ["ops@example.com"]}
    )
    queue = services.create_queue(name="fragile", type="database", pause_after_failures=3)
    healthy = threading.Event()

    @registry.handler("flaky")
    def flaky(message: dict[str, Any], ctx: Any) -> None:
        if not healthy.is_set():
            raise RuntimeError("the CRM is down")
        ctx.ack()

    checks: list[bool] = []
    is_paused = pausing.is_paused

    def counted(queue_id: int) -> bool:
        checks.append(paused := is_paused(queue_id))
        return paused

    monkeypatch.setattr(pausing, "is_paused", counted)
    publish(queue, *({"handler": "flaky", "n": n} for n in range(3)))
    worker = start_worker(queue, concurrency=1)
    pause = worker.find(PauseAfterFailures)
    assert pause is not None
    pause.check_seconds = 0.1

    queue = wait_for(
        lambda: Queue.objects.filter(pk=queue.pk, paused_at__isnull=False).first(),
        15,
        "the queue to pause",
    )
    reason = queue.paused_reason or ""
    assert reason.startswith("Paused after 3 consecutive handler failures")
    assert "RuntimeError: the CRM is down" in reason

    # The pause opened an alert and told the rule's addresses, once.
    wait_for(lambda: mail.outbox, 15, "the pause's notification")
    alert = Alert.objects.get(rule__kind="queue_paused", state=AlertState.OPEN)
    assert alert.subject_label == "queue fragile"
    assert [m.subject for m in mail.outbox] == ["[Quaymaster] Alert: Queue paused — queue fragile"]

    # Paused: the consumer keeps looping (it asks whether the pause was cleared) but fetches
    # nothing, not even the failed messages once their retry is due, nor new ones.
    publish(queue, {"handler": "flaky", "n": 3})
    wait_for(lambda: len(checks) >= 5, 15, "the paused worker to look at its pause 5 times")
    assert all(checks), "still paused each time it looked"
    assert len(worker.in_flight) == 0
    assert DatabaseMessage.objects.filter(queue=queue, attempts=0).count() == 1
    assert not DatabaseMessage.objects.filter(queue=queue, state=MessageState.IN_FLIGHT).exists()

    # An admin resumes it: the alert resolves and the worker fetches again.
    healthy.set()
    assert pausing.resume(queue)
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED
    assert mail.outbox[-1].subject.startswith("[Quaymaster] Resolved: Queue paused")
    wait_for(
        lambda: not DatabaseMessage.objects.filter(queue=queue).exists(),
        15,
        "every message to be handled after the resume",
    )
    assert not pause.paused


def test_the_success_path_counts_without_a_query() -> None:
    from tests.workers.test_retries import job
    from workers.events import EventSink
    from workers.middleware import WorkerView
    from workers.options import WorkerOptions

    queue = services.create_queue(name="fragile", type="database", pause_after_failures=2)
    view = WorkerView(queue, WorkerOptions(), None, EventSink(), {}, True)
    pause = PauseAfterFailures()
    pause.before_worker_boot(view)
    failed, succeeded = job(1, RuntimeError("no")), job(1)
    for made in (failed, succeeded):
        made.handler = object()  # type: ignore[assignment]
    with CaptureQueriesContext(connection) as queries:
        for _ in range(50):
            pause.after_process_message(view, failed)
            pause.after_process_message(view, succeeded)
    assert len(queries) == 0
    assert pause.may_fetch(view)
    pause.after_process_message(view, failed)
    pause.after_process_message(view, failed)
    assert not pause.may_fetch(view)
    assert pausing.is_paused(queue.pk)


def test_runworkers_stops_the_workers_of_a_paused_queue_and_restarts_them_on_resume(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    queue = services.create_queue(name="fragile", type="database", pause_after_failures=2)
    harness = Harness(monkeypatch)
    harness.at(0)
    (first,) = harness.running()
    assert pausing.pause(queue.pk, 2, "RuntimeError: no")
    assert not pausing.pause(queue.pk, 2, "RuntimeError: no"), "paused once only"
    harness.at(2)
    assert harness.running() == []
    assert first.returncode == 0
    pausing.resume(queue)
    harness.at(4)
    assert len(harness.running()) == 1
