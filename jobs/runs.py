"""Starting runs and steering them: pause, resume, cancel, retry failed.

``start`` is transactional: the run, its instances and the messages of the first wave (through
the outbox) commit together, or nothing does. Instances are written in bulk, so a run of
100,000 starts in seconds.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import IntegrityError, transaction
from django.utils import timezone

from jobs.dispatch import complete_if_done, locked_run, move, release, save_counters
from jobs.errors import IllegalTransition, InvalidParallelism, InvalidRunOptions, RunNotFound
from jobs.models import JobInstance, JobRun, RunTransition, Trigger
from jobs.params import check_params
from jobs.registry import registry
from jobs.states import TERMINAL_RUN_STATES, InstanceState, RunState, check_run_transition
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


def start(
    name: str,
    params: object,
    *,
    parallelism: int = 10,
    queue: Queue | str | int | None = None,
    on_complete: Queue | str | int | None = None,
    on_complete_handler: str = "log",
    trigger: str = Trigger.PYTHON,
    user: AbstractBaseUser | AnonymousUser | None = None,
    source: str | None = None,
) -> JobRun:
    """Start job ``name`` over ``params`` (a list of objects, one instance each); at most
    ``parallelism`` instances are on the queue or running at once. Everything is checked
    before anything is written: an unknown job, bad parameters, a bad parallelism or a
    missing queue raise a ``JobError`` and create nothing.

    ``source`` makes starting idempotent (the ``start_job`` handler passes its message id):
    a second start with the same source returns the first run."""
    registry.get(name)
    items = check_params(params)
    parallelism = check_parallelism(parallelism)
    run_queue = resolve_queue(queue if queue is not None else default_queue_name(), what="run")
    done_queue = (
        resolve_queue(on_complete, what="completion event") if on_complete is not None else None
    )
    if source:
        existing = JobRun.objects.filter(source=source).first()
        if existing is not None:
            return existing
    try:
        return _create(
            name,
            items,
            parallelism,
            run_queue,
            done_queue,
            on_complete_handler,
            trigger,
            user,
            source,
        )
    except IntegrityError:
        if source and (existing := JobRun.objects.filter(source=source).first()) is not None:
            return existing  # the same start_job message, delivered twice at once
        raise


def _create(
    name: str,
    items: list[dict[str, Any]],
    parallelism: int,
    run_queue: Queue,
    done_queue: Queue | None,
    on_complete_handler: str,
    trigger: str,
    user: AbstractBaseUser | AnonymousUser | None,
    source: str | None,
) -> JobRun:
    now = timezone.now()
    with transaction.atomic():
        run = JobRun.objects.create(
            job=name,
            state=RunState.ACTIVE,
            queue=run_queue,
            on_complete=done_queue,
            on_complete_handler=on_complete_handler or "log",
            parallelism=parallelism,
            trigger=trigger,
            created_by=user if isinstance(user, User) else None,
            created_at=now,
            started_at=now,
            total=len(items),
            source=source or None,
        )
        RunTransition.objects.create(
            run=run, from_state="", to_state=RunState.ACTIVE, reason=f"started by {trigger}", at=now
        )
        JobInstance.objects.bulk_create(
            (JobInstance(id=uuid.uuid4(), run=run, index=i, params=p) for i, p in enumerate(items)),
            batch_size=BULK_BATCH,
        )
        release(run)
        save_counters(run)
    return run


def get_run(run_id: uuid.UUID | str) -> JobRun:
    try:
        return JobRun.objects.get(pk=uuid.UUID(str(run_id)))
    except (ValueError, JobRun.DoesNotExist):
        raise RunNotFound(f"No run {run_id}.") from None


def pause(run_id: uuid.UUID | str, reason: str = "paused") -> JobRun:
    """Release nothing new; instances already sent finish."""
    get_run(run_id)
    with locked_run(run_id) as run:
        move(run, RunState.PAUSED, reason)
        save_counters(run)
    return run


def resume(run_id: uuid.UUID | str, reason: str = "resumed") -> JobRun:
    get_run(run_id)
    with locked_run(run_id) as run:
        if run.state != RunState.PAUSED:
            raise IllegalTransition(f"Only a paused run can be resumed; this one is {run.state}.")
        move(run, RunState.ACTIVE, reason)
        release(run)
        complete_if_done(run)
        save_counters(run)
    return run


def cancel(run_id: uuid.UUID | str, reason: str = "cancelled") -> JobRun:
    """Cancel every instance that has not started; the run ends as ``cancelled`` when the
    instances already running have ended (at once when none is)."""
    get_run(run_id)
    with locked_run(run_id) as run:
        check_run_transition(run.state, RunState.CANCELLED)
        now = timezone.now()
        waiting = JobInstance.objects.filter(run=run, state=InstanceState.PENDING)
        unsent = waiting.filter(released_at__isnull=True).update(
            state=InstanceState.CANCELLED, released_at=now, finished_at=now, reason=reason[:200]
        )
        sent = waiting.update(state=InstanceState.CANCELLED, finished_at=now, reason=reason[:200])
        run.released += unsent
        run.finished += unsent + sent
        run.cancelled += unsent + sent
        run.cancel_requested = True
        if not complete_if_done(run) and run.state != RunState.FINISHING:
            move(run, RunState.FINISHING, f"{reason}: waiting for running instances")
        save_counters(run)
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
        move(run, RunState.ACTIVE, f"{reason}: {count} instance(s)")
        release(run)
        save_counters(run)
    return run, count


def summary(run: JobRun, *, transitions: bool = True) -> dict[str, Any]:
    """State, counts, progress and timings, as the API and the pages show them."""
    from jobs.dispatch import counts

    found = counts(run)
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
