"""Releasing instances to the run's queue, and ending them: the bookkeeping under the run's
row lock that keeps parallelism, counters and the completion event exact.

Every function here runs inside a transaction that holds the run's row lock
(``lock_run``), so two workers finishing instances of one run at once cannot both release
the same next instance, count one twice, or both send ``job.completed``. Instance messages
and the completion event go through the outbox, in that same transaction: a rolled-back
finish releases nothing, and a committed one is published at least once.

Each instance message carries the run's priority (``OutgoingMessage.priority``): the queue's
engine orders by it where it has priorities, see ``jobs.runs.priority_support``.

Lock order is always run, then instances; ``execution.begin`` locks only its instance and
never the run, so it cannot deadlock with these.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from jobs.models import JobInstance, JobRun, RunTransition
from jobs.states import TERMINAL_RUN_STATES, InstanceState, RunState, check_run_transition
from quaymaster import metrics
from queues.models import OutboxMessage
from queues.outbox import notify_at_commit

#: The handler that runs job instances (registered in ``jobs.handlers``).
INSTANCE_HANDLER = "jobs.instance"
COMPLETED_EVENT = "job.completed"
log = logging.getLogger("jobs.dispatch")


def lock_run(run_id: uuid.UUID | str) -> JobRun:
    """The run, locked until the transaction ends (call inside ``transaction.atomic``)."""
    return JobRun.objects.select_for_update().get(pk=run_id)


def move(run: JobRun, target: RunState, reason: str = "") -> None:
    """Change the run's state (checked against the transition table) and record it."""
    check_run_transition(run.state, target)
    RunTransition.objects.create(run=run, from_state=run.state, to_state=target, reason=reason)
    run.state = target
    count_run(run.job, target, run.created_at if target in TERMINAL_RUN_STATES else None)


def count_run(job: str, state: str, created_at: datetime | None = None) -> None:
    """Count a run entering ``state`` (and, ended, its duration since ``created_at``) in the
    metrics, once the transaction commits."""

    def count() -> None:
        metrics.JOB_RUNS.labels(job, state).inc()
        if created_at is not None:
            seconds = (timezone.now() - created_at).total_seconds()
            metrics.JOB_RUN_DURATION.labels(job).observe(max(0.0, seconds))

    transaction.on_commit(count)


def count_instances(job: str, state: str, n: int = 1, started_at: datetime | None = None) -> None:
    """Count ``n`` instances ending in ``state`` (one with its duration since ``started_at``)
    in the metrics, once the transaction commits."""

    def count() -> None:
        metrics.JOB_INSTANCES.labels(job, state).inc(n)
        if started_at is not None:
            seconds = (timezone.now() - started_at).total_seconds()
            metrics.JOB_INSTANCE_DURATION.labels(job).observe(max(0.0, seconds))

    if n:
        transaction.on_commit(count)


def instance_message(
    run: JobRun, instance_id: uuid.UUID, index: int, dispatch: int = 1
) -> dict[str, Any]:
    """The body of an instance's message: ids only (the parameters stay in the database), and
    which release of the instance it is (``dispatch``: a message from an earlier release, e.g.
    one sent before "retry failed" sent the instance again, must not run it)."""
    return {
        "handler": INSTANCE_HANDLER,
        "job": run.job,
        "run_id": str(run.pk),
        "instance_id": str(instance_id),
        "index": index,
        "dispatch": dispatch,
    }


def release(run: JobRun) -> int:
    """Send the next pending instances, in index order, until ``parallelism`` are in flight.
    An active run with nothing left to send moves to ``finishing``."""
    if run.state != RunState.ACTIVE:
        return 0
    room = run.parallelism - run.in_flight
    batch: list[tuple[uuid.UUID, int, int]] = []
    if room > 0:
        batch = list(
            JobInstance.objects.filter(
                run=run, state=InstanceState.PENDING, released_at__isnull=True
            )
            .order_by("index")
            .values_list("id", "index", "dispatch")[:room]
        )
    if batch:
        JobInstance.objects.filter(pk__in=[pk for pk, _, _ in batch]).update(
            released_at=timezone.now(), dispatch=F("dispatch") + 1
        )
        sent = OutboxMessage.objects.bulk_create(
            OutboxMessage(
                message_id=uuid.uuid4(),
                queue_id=run.queue_id,
                # One key per instance: Kafka spreads a run over partitions (one key per run
                # would put it on one partition, so on one consumer of the group).
                ordering_key=f"job:{pk}",
                body=instance_message(run, pk, index, dispatch + 1),
                priority=run.priority,
            )
            for pk, index, dispatch in batch
        )
        notify_at_commit()
        # The run's id beside its instances' message ids (quaymaster.logs), which the relay and
        # the workers log too.
        log.info(
            "jobs: released %d instance(s) of run %s",
            len(batch),
            run.pk,
            extra={
                "run_id": str(run.pk),
                "job": run.job,
                "message_ids": [str(m.message_id) for m in sent],
            },
        )
        run.released += len(batch)
    if run.released >= run.total:
        move(run, RunState.FINISHING, "every instance has been released")
    return len(batch)


def end_instance(
    run: JobRun,
    instance: JobInstance,
    state: InstanceState,
    *,
    result: Any = None,
    error: dict[str, Any] | None = None,
    reason: str = "",
) -> None:
    """Put a non-terminal instance of the locked ``run`` into a terminal ``state``, count it,
    release the next one and, if it was the last, complete the run."""
    instance.state = state
    instance.result = result
    instance.error = error
    instance.reason = reason[:200]
    instance.finished_at = timezone.now()
    if instance.released_at is None:
        instance.released_at = instance.finished_at  # it leaves the pool unsent (cancelled)
        run.released += 1
    instance.save(
        update_fields=["state", "result", "error", "reason", "finished_at", "released_at"]
    )
    run.finished += 1
    count_instances(run.job, state, started_at=instance.started_at)
    if state == InstanceState.COMPLETED:
        run.completed += 1
    elif state == InstanceState.ERRORED:
        run.errored += 1
    else:
        run.cancelled += 1
    release(run)
    complete_if_done(run)
    save_counters(run)


def cancel_waiting(run: JobRun, reason: str) -> int:
    """Cancel every instance of the locked ``run`` that has not started (sent or not; a sent
    one is acknowledged without running when its message comes); returns how many."""
    now = timezone.now()
    waiting = JobInstance.objects.filter(run=run, state=InstanceState.PENDING)
    unsent = waiting.filter(released_at__isnull=True).update(
        state=InstanceState.CANCELLED, released_at=now, finished_at=now, reason=reason[:200]
    )
    sent = waiting.update(state=InstanceState.CANCELLED, finished_at=now, reason=reason[:200])
    run.released += unsent
    run.finished += unsent + sent
    run.cancelled += unsent + sent
    count_instances(run.job, InstanceState.CANCELLED, unsent + sent)
    return unsent + sent


def complete_if_done(run: JobRun) -> bool:
    """When every instance has ended: the run's final state and, once, ``job.completed``."""
    if run.finished < run.total or run.state in (
        RunState.COMPLETED,
        RunState.COMPLETED_WITH_ERRORS,
        RunState.CANCELLED,
        RunState.FAILED,
    ):
        return False
    if run.cancel_requested:
        final, why = RunState.CANCELLED, "cancelled; the last running instance ended"
    elif run.completed == run.total:
        final, why = RunState.COMPLETED, "every instance completed"
    elif run.completed == 0:
        final, why = RunState.FAILED, "no instance completed"
    else:
        final, why = RunState.COMPLETED_WITH_ERRORS, "some instances did not complete"
    move(run, final, why)
    run.finished_at = timezone.now()
    if run.on_complete_id is not None:
        OutboxMessage.objects.create(
            message_id=uuid.uuid4(),
            queue_id=run.on_complete_id,
            ordering_key=f"job-run:{run.pk}",
            body=completion_message(run),
        )
        notify_at_commit()
    return True


def completion_message(run: JobRun) -> dict[str, Any]:
    return {
        "handler": run.on_complete_handler or "log",
        "event": COMPLETED_EVENT,
        "run_id": str(run.pk),
        "job": run.job,
        "state": run.state,
        "counts": counts(run),
        "trigger": run.trigger,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


def counts(run: JobRun) -> dict[str, int]:
    """Instances per state (one grouped count over the run's state index), and the total."""
    found = dict(
        JobInstance.objects.filter(run=run)
        .order_by()
        .values_list("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    return {
        "total": run.total,
        **{state.value: found.get(state.value, 0) for state in InstanceState},
    }


def save_counters(run: JobRun) -> None:
    run.save(
        update_fields=[
            "state",
            "released",
            "finished",
            "completed",
            "errored",
            "cancelled",
            "cancel_requested",
            "started_at",
            "finished_at",
        ]
    )


@contextmanager
def locked_run(run_id: uuid.UUID | str) -> Iterator[JobRun]:
    """``with locked_run(id) as run:`` — a transaction holding the run's row lock."""
    with transaction.atomic():
        yield lock_run(run_id)
