"""Each condition kind measures what its words say: which subjects breach, with what value, and
which it could not measure (an engine that does not answer leaves its alert as it is). And a
new kind is one registered class: the rule form and the evaluator take it with nothing else."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, ClassVar

import pytest
from django.utils import timezone

from alerts import evaluator
from alerts.conditions import Breach, Condition, Param, Reading, condition, register
from alerts.conditions import base as registry
from alerts.errors import InvalidRule
from alerts.models import Alert, AlertRule
from alerts.services import save_rule
from backoffice.forms.alerts import AlertRuleForm
from jobs.models import JobRun
from jobs.states import RunState
from queues import services
from queues.models import DatabaseMessage, OutboxMessage, Queue
from workers.models import EventKind, LifecycleEvent, WorkerProcess

pytestmark = pytest.mark.django_db


@pytest.fixture
def orders() -> Queue:
    return services.create_queue(name="orders", type="database")


def rule(kind: str, queue: Queue | None = None, **params: Any) -> AlertRule:
    return AlertRule(name=kind, kind=kind, params=params, queue=queue)


def read(made: AlertRule, now: datetime | None = None) -> Reading:
    return condition(made.kind).observe(made, now or timezone.now())


def values(reading: Reading) -> dict[str, float | None]:
    return {b.subject: b.value for b in reading.breaches}


def test_outbox_age(orders: Queue) -> None:
    now = timezone.now()
    OutboxMessage.objects.create(queue=orders, body={}, created_at=now - timedelta(seconds=400))
    assert values(read(rule("outbox_age", seconds=300), now)) == {"outbox": 400}
    assert values(read(rule("outbox_age", seconds=500), now)) == {}
    scoped = read(rule("outbox_age", orders, seconds=300), now)
    assert scoped.breaches[0].summary.startswith("The oldest message in the outbox of queue orders")


def test_no_worker_for_longer_than_s_seconds(orders: Queue) -> None:
    now = orders.created_at + timedelta(seconds=120)
    assert values(read(rule("no_worker", seconds=60), now)) == {f"queue:{orders.pk}": 120}
    assert values(read(rule("no_worker", seconds=180), now)) == {}
    WorkerProcess.objects.create(queue=orders, host="h", pid=1, concurrency=1)  # beating now
    assert values(read(rule("no_worker", seconds=1))) == {}
    orders.paused_at = timezone.now()
    orders.save()
    WorkerProcess.objects.all().delete()
    assert values(read(rule("no_worker", seconds=1), now)) == {}, "a pause is its own alert"


def test_handler_error_rate_over_a_window(orders: Queue) -> None:
    def events(kind: str, count: int, minutes_ago: float = 1) -> None:
        at = timezone.now() - timedelta(minutes=minutes_ago)
        LifecycleEvent.objects.bulk_create(
            LifecycleEvent(queue="orders", kind=kind, at=at) for _ in range(count)
        )

    events(EventKind.COMPLETE, 6)
    events(EventKind.FAILED, 4)
    events(EventKind.FAILED, 50, minutes_ago=30)  # outside the window
    events(EventKind.STARTED, 10)  # not an end
    assert values(read(rule("error_rate", percent=30, minutes=5, min_runs=10))) == {
        f"queue:{orders.pk}": 40.0
    }
    assert values(read(rule("error_rate", percent=40, minutes=5, min_runs=10))) == {}
    assert values(read(rule("error_rate", percent=30, minutes=5, min_runs=11))) == {}


def test_consumer_lag_and_an_engine_that_does_not_answer(orders: Queue) -> None:
    now = timezone.now()
    DatabaseMessage.objects.bulk_create(
        DatabaseMessage(queue=orders, message_id=uuid.uuid4(), body={}, available_at=now)
        for _ in range(3)
    )
    assert values(read(rule("consumer_lag", threshold=2))) == {f"queue:{orders.pk}": 3}
    assert values(read(rule("consumer_lag", threshold=3))) == {}
    down = services.create_queue(name="far", type="rabbitmq", url="amqp://127.0.0.1:9/")
    reading = read(rule("consumer_lag", down, threshold=0))
    assert reading.breaches == []
    assert reading.unknown == {f"queue:{down.pk}"}


def test_the_latest_run_of_a_job_failed(orders: Queue) -> None:
    now = timezone.now()

    def run(job: str, state: str, hours_ago: float) -> None:
        at = now - timedelta(hours=hours_ago)
        JobRun.objects.create(job=job, state=state, queue=orders, finished_at=at)

    run("nightly", RunState.COMPLETED, 3)
    run("nightly", RunState.FAILED, 2)
    run("nightly", RunState.FAILED, 1)
    run("hourly", RunState.FAILED, 2)
    run("hourly", RunState.COMPLETED, 1)
    run("weekly", RunState.FAILED, 50)
    assert values(read(rule("job_failed", hours=24), now)) == {"job:nightly": 2}
    only = AlertRule(name="x", kind="job_failed", params={"hours": 72}, job="weekly")
    assert values(read(only, now)) == {"job:weekly": 1}


def test_parameters_are_the_kinds_to_check() -> None:
    with pytest.raises(InvalidRule) as refused:
        condition("error_rate").clean_params({"percent": "150", "minutes": "x", "min_runs": 2.5})
    assert refused.value.errors == {
        "percent": ["Enter a number from 0 to 100."],
        "minutes": ["Enter a number."],
        "min_runs": ["Enter a whole number."],
    }
    assert condition("error_rate").clean_params({}) == {"percent": 10, "minutes": 5, "min_runs": 10}


class Backlog(Condition):
    key = "test_backlog"
    label = "Records waiting above N"
    description = "A kind added by a test."
    params = (Param("limit", "More than", 1),)
    seen: ClassVar[int] = 5

    def observe(self, rule: AlertRule, now: datetime) -> Reading:
        if self.seen <= self.param(rule, "limit"):
            return Reading()
        return Reading([Breach("backlog", "the backlog", self.seen, f"{self.seen} waiting.")])


@pytest.fixture
def backlog_kind() -> Iterator[None]:
    register(Backlog)
    yield
    registry._REGISTRY.pop(Backlog.key)


def test_a_new_kind_is_one_class(backlog_kind: None) -> None:
    form = AlertRuleForm()
    assert ("test_backlog", "Records waiting above N") in form.fields["kind"].choices  # type: ignore[attr-defined]
    assert "test_backlog__limit" in form.fields
    data = {"name": "Backlog", "kind": "test_backlog", "test_backlog__limit": "3"}
    bound = AlertRuleForm({**data, "quiet_minutes": "60", "enabled": "on"})
    assert bound.is_valid(), bound.errors
    made = save_rule(None, **bound.values())
    assert made.params == {"limit": 3}
    evaluator.evaluate()
    assert Alert.objects.get(rule=made).summary == "5 waiting."
