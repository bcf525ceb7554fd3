"""The retry middleware's decisions (the engines' side is in test_runtime.py)."""

from __future__ import annotations

import itertools
import uuid

import pytest

from queues.messages import Delivery
from queues.models import Queue
from workers.errors import CircuitOpen, HandlerNotFound, Retry
from workers.events import EventSink
from workers.job import Job, Outcome, Settlement
from workers.middleware import WorkerView
from workers.middleware.retries import Retries, backoff
from workers.options import WorkerOptions


def job(
    attempt: int, exception: BaseException | None = None, outcome: Outcome | None = None
) -> Job:
    made = Job(1, Delivery(str(uuid.uuid4()), b"{}", attempt, {}, None), 0.0)
    made.exception = exception
    made.traceback = "Traceback (most recent call last):\n  ...\n" if exception else ""
    made.outcome = outcome
    return made


@pytest.fixture
def worker() -> WorkerView:
    return WorkerView(
        queue=Queue(name="q", type="database", max_attempts=4),
        options=WorkerOptions(),
        process_id=None,
        events=EventSink(),
        in_flight={},
        leases=True,
    )


def decide(worker: WorkerView, made: Job, retries: Retries | None = None) -> Outcome | None:
    (retries or Retries(base_delay=1.0, max_delay=10.0)).after_process_message(worker, made)
    return made.outcome


def test_backoff_doubles_within_equal_jitter_and_never_shrinks() -> None:
    low = [backoff(n, 1.0, 100.0, rng=lambda: 0.0) for n in range(1, 6)]
    high = [backoff(n, 1.0, 100.0, rng=lambda: 1.0) for n in range(1, 6)]
    assert low == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert high == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert all(h <= nxt for h, nxt in itertools.pairwise(low)), "jitter cannot make it shrink"
    assert backoff(30, 1.0, 60.0, rng=lambda: 1.0) == 60.0


def test_an_exception_is_retried_with_backoff(worker: WorkerView) -> None:
    outcome = decide(worker, job(2, ValueError("nope")))
    assert outcome is not None
    assert outcome.settlement == Settlement.RETRY
    assert outcome.delay is not None
    assert 1.0 <= outcome.delay <= 2.0
    assert outcome.reason == "ValueError: nope"


def test_the_last_attempt_is_dead_lettered_with_error_traceback_and_count(
    worker: WorkerView,
) -> None:
    outcome = decide(worker, job(4, ValueError("nope")))
    assert outcome is not None
    assert outcome.settlement == Settlement.DEAD_LETTER
    assert outcome.reason.startswith("ValueError: nope (gave up after attempt 4 of 4)")
    assert "Traceback" in outcome.reason


def test_retry_and_circuit_open_choose_their_delay(worker: WorkerView) -> None:
    asked = decide(worker, job(1, Retry(delay=42)))
    tripped = decide(worker, job(1, CircuitOpen("crm", 12.5)))
    assert asked is not None
    assert asked.delay == 42
    assert tripped is not None
    assert tripped.delay == 12.5


def test_an_explicit_retry_on_the_last_attempt_is_dead_lettered(worker: WorkerView) -> None:
    outcome = decide(worker, job(4, outcome=Outcome.retry(5, "The handler asked for a retry.")))
    assert outcome is not None
    assert outcome.settlement == Settlement.DEAD_LETTER
    assert "last attempt (attempt 4 of 4)" in outcome.reason


def test_permanent_errors_are_not_retried(worker: WorkerView) -> None:
    outcome = decide(worker, job(1, HandlerNotFound("ghost")))
    assert outcome is not None
    assert outcome.settlement == Settlement.DEAD_LETTER
    assert "not retried" in outcome.reason


def test_an_ack_stands_even_if_the_handler_raised_afterwards(worker: WorkerView) -> None:
    assert decide(worker, job(1, ValueError("late"), Outcome.ack())) == Outcome.ack()


def test_returning_without_settling_is_left_to_the_engine(worker: WorkerView) -> None:
    assert decide(worker, job(1)) is None
