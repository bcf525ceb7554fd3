"""Running one instance on the platform's workers.

An instance is a message ``{"handler": "jobs.instance", "run_id", "instance_id", …}`` on the
run's queue, so the worker runtime gives it what every handler gets: retries with backoff,
heartbeats, lifecycle events, dead letters, SIGKILL safety. ``run_instance``:

1. ``begin``: in one transaction, locks the instance; if it has already ended (a message
   delivered again after its instance completed, or one cancelled meanwhile) the message is
   acknowledged and nothing runs; otherwise it becomes ``in_progress`` with one more attempt.
2. calls the job function outside any transaction (a worker killed here leaves the instance
   ``in_progress``; the message comes back and the instance runs again);
3. ``finish``: stores the result, marks it ``completed``, releases the next instance and,
   after the last one, completes the run — in one transaction — then acknowledges.

An exception is retried by the worker with backoff while attempts remain (the error is kept
on the instance); on the last attempt the instance is ``errored`` with its error context and
the message is acknowledged, so one failure never holds the rest of the run.
"""

from __future__ import annotations

import json
import traceback
import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from jobs.context import JobContext
from jobs.dispatch import end_instance, locked_run
from jobs.errors import UnknownJob
from jobs.models import JobInstance
from jobs.registry import registry
from jobs.states import TERMINAL_INSTANCE_STATES, InstanceState
from jobs.windows import expire
from quaymaster import logs
from workers.context import Context


def run_instance(message: dict[str, Any], ctx: Context) -> None:
    """The ``jobs.instance`` handler."""
    try:
        instance_id = uuid.UUID(str(message["instance_id"]))
    except (KeyError, ValueError):
        ctx.dead_letter("A jobs.instance message needs the instance_id of a job instance.")
        return
    dispatch = message.get("dispatch")
    try:
        instance = begin(instance_id, dispatch if isinstance(dispatch, int) else None)
    except _PastDeadline as late:
        expire(late.run_id)
        ctx.ack()
        return
    if instance is None:
        ctx.ack()
        return
    # The run's ids on every line logged from here to the message's end (quaymaster.logs).
    logs.bind(run_id=str(instance.run_id), instance_id=str(instance.pk), job=instance.run.job)
    try:
        definition = registry.get(instance.run.job)
    except UnknownJob as exc:
        # Not this process's job modules: nothing a retry can change.
        finish(instance, InstanceState.ERRORED, error=_error(exc, instance.attempts, tb=""))
        ctx.ack()
        return
    try:
        result = definition(instance.params, JobContext(ctx, instance))
        json.dumps(result, allow_nan=False)
    except Exception as exc:
        error = _error(exc, instance.attempts)
        ctx.log.error(
            "job %s run %s instance %s (#%s) failed on attempt %s: %s",
            instance.run.job,
            instance.run_id,
            instance.pk,
            instance.index,
            instance.attempts,
            error["message"],
        )
        if ctx.is_last_attempt:
            finish(instance, InstanceState.ERRORED, error=error)
            ctx.ack()
            return
        JobInstance.objects.filter(pk=instance.pk).update(error=error)
        raise
    finish(instance, InstanceState.COMPLETED, result=result)
    ctx.ack()


def begin(instance_id: uuid.UUID, dispatch: int | None = None) -> JobInstance | None:
    """The instance, now ``in_progress`` with one more attempt; None when there is nothing to
    run (it ended already, it no longer exists, or the message is from an earlier release of
    the instance than its latest, ``dispatch``). Raises ``_PastDeadline`` for an instance
    that has not started when its run's deadline has passed."""
    with transaction.atomic():
        instance = (
            JobInstance.objects.select_for_update(of=("self",))
            .select_related("run")
            .filter(pk=instance_id)
            .first()
        )
        if instance is None or instance.state in TERMINAL_INSTANCE_STATES:
            return None
        if dispatch is not None and dispatch != instance.dispatch:
            return None  # a message of an earlier release (the instance was sent again since)
        deadline = instance.run.deadline
        if instance.state == InstanceState.PENDING and deadline and deadline <= timezone.now():
            raise _PastDeadline(instance.run_id)
        instance.state = InstanceState.IN_PROGRESS
        instance.attempts += 1
        instance.started_at = instance.started_at or timezone.now()
        instance.save(update_fields=["state", "attempts", "started_at"])
    return instance


def finish(
    instance: JobInstance,
    state: InstanceState,
    *,
    result: Any = None,
    error: dict[str, Any] | None = None,
) -> bool:
    """End the instance in ``state`` (once: False when it had ended already)."""
    with locked_run(instance.run_id) as run:
        current = JobInstance.objects.select_for_update().get(pk=instance.pk)
        if current.state in TERMINAL_INSTANCE_STATES:
            return False
        end_instance(run, current, state, result=result, error=error)
    return True


class _PastDeadline(Exception):
    """The instance's run is past its deadline: cancel (in the run's lock order) instead."""

    def __init__(self, run_id: uuid.UUID) -> None:
        super().__init__(str(run_id))
        self.run_id = run_id


def _error(exc: BaseException, attempts: int, tb: str | None = None) -> dict[str, Any]:
    return {
        "type": type(exc).__name__,
        "message": str(exc)[:2000],
        "traceback": traceback.format_exc()[-8000:] if tb is None else tb,
        "attempts": attempts,
    }
