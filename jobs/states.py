"""The states of a run and of its instances, and the one table of allowed transitions.

Run::

    scheduled ──► active ──► finishing ──► completed | completed_with_errors | cancelled
        │           ▲  │         │
        │           │  ▼         └────────► failed (no instance completed: all errored, or
        │         paused                      were cancelled by the deadline)
        └──────────► cancelled          (by an admin)

``scheduled``: created, waiting for ``not_before``. ``active``: instances are released up to
``parallelism``. ``paused``: nothing new is released; instances already released finish.
``finishing``: nothing is left to release (or a cancel was asked for) and the last released
instances are still running. A terminal run can go back to ``active`` with "retry failed".

Instance::

    pending ──► in_progress ──► completed | errored | cancelled
       │            │ (an attempt failed, more left: stays in_progress until the next one)
       └────────────┴──► cancelled (run cancelled, or not started by the deadline)

``errored`` and ``cancelled`` instances go back to ``pending`` with "retry failed".
"""

from __future__ import annotations

from django.db import models

from jobs.errors import IllegalTransition


class RunState(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    FINISHING = "finishing", "Finishing"
    COMPLETED = "completed", "Completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors", "Completed with errors"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


class InstanceState(models.TextChoices):
    PENDING = "pending", "Pending"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    ERRORED = "errored", "Errored"
    CANCELLED = "cancelled", "Cancelled"


RS, IS = RunState, InstanceState

RUN_TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RS.SCHEDULED: frozenset({RS.ACTIVE, RS.PAUSED, RS.FINISHING, RS.CANCELLED}),
    RS.ACTIVE: frozenset(
        {RS.PAUSED, RS.FINISHING, RS.COMPLETED, RS.COMPLETED_WITH_ERRORS, RS.CANCELLED, RS.FAILED}
    ),
    RS.PAUSED: frozenset(
        {RS.ACTIVE, RS.FINISHING, RS.CANCELLED, RS.COMPLETED, RS.COMPLETED_WITH_ERRORS, RS.FAILED}
    ),
    RS.FINISHING: frozenset({RS.COMPLETED, RS.COMPLETED_WITH_ERRORS, RS.CANCELLED, RS.FAILED}),
    RS.COMPLETED: frozenset(),
    RS.COMPLETED_WITH_ERRORS: frozenset({RS.ACTIVE}),
    RS.CANCELLED: frozenset({RS.ACTIVE}),
    RS.FAILED: frozenset({RS.ACTIVE}),
}

INSTANCE_TRANSITIONS: dict[InstanceState, frozenset[InstanceState]] = {
    IS.PENDING: frozenset({IS.IN_PROGRESS, IS.CANCELLED}),
    IS.IN_PROGRESS: frozenset({IS.COMPLETED, IS.ERRORED, IS.CANCELLED}),
    IS.COMPLETED: frozenset(),
    IS.ERRORED: frozenset({IS.PENDING}),
    IS.CANCELLED: frozenset({IS.PENDING}),
}

TERMINAL_RUN_STATES = frozenset({RS.COMPLETED, RS.COMPLETED_WITH_ERRORS, RS.CANCELLED, RS.FAILED})
TERMINAL_INSTANCE_STATES = frozenset({IS.COMPLETED, IS.ERRORED, IS.CANCELLED})
#: Runs whose instances may still be released or be running.
OPEN_RUN_STATES = frozenset({RS.SCHEDULED, RS.ACTIVE, RS.PAUSED, RS.FINISHING})


def check_run_transition(current: str, target: RunState) -> None:
    if target not in RUN_TRANSITIONS[RunState(current)]:
        raise IllegalTransition(
            f"A {RunState(current).label.lower()} run cannot become {target.label.lower()}."
        )


def check_instance_transition(current: str, target: InstanceState) -> None:
    if target not in INSTANCE_TRANSITIONS[InstanceState(current)]:
        raise IllegalTransition(
            f"A {InstanceState(current).label.lower()} instance cannot become "
            f"{target.label.lower()}."
        )
