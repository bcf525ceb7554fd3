"""Starting runs and steering them: pause, resume, cancel, retry failed.

``start`` is transactional: the run, its instances and the messages of the first wave (through
the outbox) commit together, or nothing does. Instances are written in bulk, so a run of
100,000 starts in seconds.

A run's ``priority`` (0 to 9, higher first) travels on each of its instance messages, and the
queue's engine does what it can with it (``priority_support``): the database queue claims the
highest first; RabbitMQ does on a queue declared with a max priority; SQS and Kafka have no
priorities and ignore it. Priority decides between messages waiting on the queue; it does not
lift a run's parallelism, and a busy high-priority run can keep a lower one waiting.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit import trail
from jobs.dispatch import (
    cancel_waiting,
    complete_if_done,
    count_run,
    locked_run,
    move,
    release,
    save_counters,
)
from jobs.errors import IllegalTransition, InvalidParallelism, InvalidRunOptions, RunNotFound
from jobs.models import JobInstance, JobRun, RunTransition, Trigger
from jobs.models.runs import MAX_RUN_PRIORITY
from jobs.params import check_params
from jobs.registry import registry
from jobs.states import TERMINAL_RUN_STATES, InstanceState, RunState, check_run_transition
from queues.backends import backend_class
from queues.backends.base import PrioritySupport
from queues.models import Queue

#: Instances written per INSERT when a run starts.
BULK_BATCH = 5_000
MAX_PARALLELISM = 10_000


def default_queue_name() -> str:
    from django.conf import settings

    return str(getattr(settings, "QUAYMASTER_JOB_QUEUE", "jobs"))


def resolve_queue(queue: Queue | str | int | None, *, what: str) -> Queue:
    if isinstance(queue, Queue):
        found = queue
    else:
        lookup = {"pk": queue} if isinstance(queue, int) else {"name": queue}
        try:
            found = Queue.objects.get(**lookup)
        except Queue.DoesNotExist:
            raise InvalidRunOptions(f"There is no queue {queue!r} for the {what}.") from None
    if not found.enabled:
        raise InvalidRunOptions(f"The queue {found.name!r} for the {what} is disabled.")
    return found


def check_parallelism(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParallelism("The parallelism must be a whole number.")
    if not 1 <= value <= MAX_PARALLELISM:
        raise InvalidParallelism(f"The parallelism must be between 1 and {MAX_PARALLELISM}.")
    return value


def check_priority(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRunOptions("The priority must be a whole number.")
    if not 0 <= value <= MAX_RUN_PRIORITY:
        raise InvalidRunOptions(f"The priority must be between 0 and {MAX_RUN_PRIORITY}.")
    return value


def priority_support(run: JobRun) -> PrioritySupport:
    """What the run's queue engine does with its priority (honoured, or ignored and why)."""
    return backend_class(run.queue.type).priority_support(run.queue)


def check_window(
    not_before: dt.datetime | None, deadline: dt.datetime | None, now: dt.datetime
) -> None:
    for name, moment in (("not_before", not_before), ("deadline", deadline)):
        if moment is not None and timezone.is_naive(moment):
            raise InvalidRunOptions(f"{name} needs a time zone (e.g. 2026-01-31T12:00:00Z).")
    if deadline is not None and deadline <= now:
        raise InvalidRunOptions("The deadline has passed already.")
    if deadline is not None and not_before is not None and deadline <= not_before:
        raise InvalidRunOptions("The deadline must come after not_before.")


@dataclass(frozen=True)
class _NewRun:
    job: str
    items: list[dict[str, Any]]
    parallelism: int
    priority: int
    queue: Queue
    on_complete: Queue | None
    on_complete_handler: str
    trigger: str
    user: User | None
    source: str | None
    not_before: dt.datetime | None
    deadline: dt.datetime | None


def start(
    name: str,
    params: object,
    *,
    parallelism: int = 10,
    priority: int = 0,
    queue: Queue | str | int | None = None,
    on_complete: Queue | str | int | None = None,
    on_complete_handler: str = "log",
    not_before: dt.datetime | None = None,
    deadline: dt.datetime | None = None,
    trigger: str = Trigger.PYTHON,
    user: AbstractBaseUser | AnonymousUser | None = None,
    source: str | None = None,
) -> JobRun:
    """Start job ``name`` over ``params`` (a list of objects, one instance each); at most
    ``parallelism`` instances are on the queue or running at once; ``priority`` (0 to 9)
    goes on every instance message (see the module docstring). Everything is checked
    before anything is written: an unknown job, bad parameters, a bad parallelism or
    priority, a missing queue or a bad time window raise a ``JobError`` and create nothing.

    A run with ``not_before`` in the future is ``scheduled``: the jobs housekeeping tick
    releases its first instances then. Instances not started by ``deadline`` are cancelled.
    ``source`` makes starting idempotent (the ``start_job`` handler passes its message id):
    a second start with the same source returns the first run."""
    registry.get(name)
    spec = _NewRun(
        job=name,
        items=check_params(params),
        parallelism=check_parallelism(parallelism),
        priority=check_priority(priority),
        queue=resolve_queue(queue if queue is not None else default_queue_name(), what="run"),
        on_complete=(
            resolve_queue(on_complete, what="completion event") if on_complete is not None else None
        ),
        on_complete_handler=on_complete_handler or "log",
        trigger=trigger,
        user=user if isinstance(user, User) else None,
        source=source or None,
        not_before=not_before,
        deadline=deadline,
    )
    check_window(not_before, deadline, timezone.now())
    if spec.source and (existing := JobRun.objects.filter(source=spec.source).first()):
        return existing
    try:
        return _create(spec)
    except IntegrityError:
        if spec.source and (existing := JobRun.objects.filter(source=spec.source).first()):
            return existing  # the same start_job message, delivered twice at once
        raise


def _create(spec: _NewRun) -> JobRun:
    now = timezone.now()
    scheduled = spec.not_before is not None and spec.not_before > now
    state = RunState.SCHEDULED if scheduled else RunState.ACTIVE
    with transaction.atomic():
        run = JobRun.objects.create(
            job=spec.job,
            state=state,
            queue=spec.queue,
            on_complete=spec.on_complete,
            on_complete_handler=spec.on_complete_handler,
            parallelism=spec.parallelism,
            priority=spec.priority,
            trigger=spec.trigger,
            created_by=spec.user,
            created_at=now,
            started_at=None if scheduled else now,
            not_before=spec.not_before,
            deadline=spec.deadline,
            total=len(spec.items),
            source=spec.source,
        )
        RunTransition.objects.create(
            run=run, from_state="", to_state=state, reason=f"started by {spec.trigger}", at=now
        )
        count_run(run.job, state)
        JobInstance.objects.bulk_create(
            (
                JobInstance(id=uuid.uuid4(), run=run, index=i, params=p)
                for i, p in enumerate(spec.items)
            ),
            batch_size=BULK_BATCH,
        )
        release(run)
        save_counters(run)
        if spec.trigger in AUDITED_TRIGGERS:
            details = {"job": run.job, "instances": run.total, "trigger": spec.trigger}
            trail.record("job_run.start", run, details=details)
    return run


#: Starts a person asked for (the audit trail leaves out schedules', messages' and code's).
AUDITED_TRIGGERS = frozenset({Trigger.API, Trigger.PAGE, Trigger.COMMAND})


def get_run(run_id: uuid.UUID | str) -> JobRun:
    try:
        return JobRun.objects.get(pk=uuid.UUID(str(run_id)))
    except (ValueError, JobRun.DoesNotExist):
        raise RunNotFound(f"No run {run_id}.") from None


def pause(run_id: uuid.UUID | str, reason: str = "paused") -> JobRun:
    """Release nothing new; instances already sent finish."""
    get_run(run_id)
    with locked_run(run_id) as run:
        before = run.state
        move(run, RunState.PAUSED, reason)
        save_counters(run)
        _audit("job_run.pause", run, before, reason)
    return run


def _audit(action: str, run: JobRun, before: str, reason: str, **details: Any) -> None:
    """The control's audit row, in its transaction: the run's state before and after."""
    details = {"job": run.job, "reason": reason, **details}
    trail.record(action, run, before={"state": before}, after={"state": run.state}, details=details)


def resume(run_id: uuid.UUID | str, reason: str = "resumed") -> JobRun:
    get_run(run_id)
    with locked_run(run_id) as run:
        if run.state != RunState.PAUSED:
            raise IllegalTransition(f"Only a paused run can be resumed; this one is {run.state}.")
        before = run.state
        move(run, RunState.ACTIVE, reason)
        release(run)
        complete_if_done(run)
        save_counters(run)
        _audit("job_run.resume", run, before, reason)
    return run


def cancel(run_id: uuid.UUID | str, reason: str = "cancelled") -> JobRun:
    """Cancel every instance that has not started; the run ends as ``cancelled`` when the
    instances already running have ended (at once when none is)."""
    get_run(run_id)
    with locked_run(run_id) as run:
        check_run_transition(run.state, RunState.CANCELLED)
        before = run.state
        cancel_waiting(run, reason)
        run.cancel_requested = True
        if not complete_if_done(run) and run.state != RunState.FINISHING:
            move(run, RunState.FINISHING, f"{reason}: waiting for running instances")
        save_counters(run)
        _audit("job_run.cancel", run, before, reason)
    return run


def retry_failed(run_id: uuid.UUID | str, reason: str = "retry failed") -> tuple[JobRun, int]:
    """Send errored and cancelled instances of an ended run again, from their first attempt."""
    get_run(run_id)
    with locked_run(run_id) as run:
        if run.state not in TERMINAL_RUN_STATES:
            raise IllegalTransition(
                f"Only an ended run can retry its failures; this one is {run.state}."
            )
        check_run_transition(run.state, RunState.ACTIVE)
        again = JobInstance.objects.filter(
            run=run, state__in=[InstanceState.ERRORED, InstanceState.CANCELLED]
        )
        errored = again.filter(state=InstanceState.ERRORED).count()
        count = again.update(
            state=InstanceState.PENDING,
            attempts=0,
            error=None,
            result=None,
            progress=None,
            reason="",
            released_at=None,
            started_at=None,
            finished_at=None,
        )
        if count == 0:
            raise InvalidRunOptions("The run has no errored or cancelled instances to retry.")
        run.released -= count
        run.finished -= count
        run.errored -= errored
        run.cancelled -= count - errored
        run.cancel_requested = False
        run.finished_at = None
        before = run.state
        move(run, RunState.ACTIVE, f"{reason}: {count} instance{'' if count == 1 else 's'}")
        release(run)
        save_counters(run)
        _audit("job_run.retry_failed", run, before, reason, instances=count)
    return run, count


def summary(run: JobRun, *, transitions: bool = True) -> dict[str, Any]:
    """State, counts, progress and timings, as the API and the pages show them."""
    from jobs.dispatch import counts

    found = counts(run)
    honoured = priority_support(run)
    now = timezone.now()
    end = run.finished_at or now
    elapsed = (end - run.started_at).total_seconds() if run.started_at else 0.0
    ended = found["completed"] + found["errored"] + found["cancelled"]
    rate = ended / elapsed if elapsed > 0 else 0.0
    remaining = run.total - ended
    return {
        "run-id": str(run.pk),
        "job": run.job,
        "state": run.state,
        "trigger": run.trigger,
        "queue": run.queue.name,
        "on-complete": run.on_complete.name if run.on_complete else None,
        "parallelism": run.parallelism,
        "priority": run.priority,
        "priority-honoured": honoured.honoured,
        "priority-note": honoured.detail,
        "counts": found,
        "percent": round(100.0 * ended / run.total, 1) if run.total else 100.0,
        "throughput": round(rate, 2),
        "eta-seconds": round(remaining / rate, 1) if rate > 0 and remaining else None,
        "created_at": run.created_at.isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    } | (
        {
            "transitions": [
                {"from": t.from_state, "to": t.to_state, "reason": t.reason, "at": t.at.isoformat()}
                for t in run.transitions.all()
            ]
        }
        if transitions
        else {}
    )
