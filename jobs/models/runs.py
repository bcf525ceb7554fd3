"""Runs, their instances, and every state change of a run.

A ``JobRun`` keeps its own counters (released, finished, completed, errored, cancelled),
changed only under the run's row lock in the same transaction as the instance rows they
count, so "how many are in flight" (released - finished) is read without counting rows: that
is what lets each finishing instance release the next one in constant time.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django.utils import timezone

from jobs.states import InstanceState, RunState

#: A run's priority: 0 (the default) to 9, higher first, on the engines that have priorities.
MAX_RUN_PRIORITY = 9


class Trigger(models.TextChoices):
    API = "api", "API"
    PAGE = "page", "Back-office"
    COMMAND = "command", "Command"
    MESSAGE = "message", "Message (start_job handler)"
    SCHEDULE = "schedule", "Schedule"
    PYTHON = "python", "Python"


class JobRun(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    job = models.CharField(max_length=200, db_index=True)
    state = models.CharField(max_length=24, choices=RunState.choices, default=RunState.ACTIVE)
    queue = models.ForeignKey("queues.Queue", on_delete=models.PROTECT, related_name="job_runs")
    on_complete = models.ForeignKey(
        "queues.Queue",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="job_completions",
        help_text="Where the job.completed message goes when the last instance ends.",
    )
    on_complete_handler = models.CharField(max_length=200, blank=True, default="")
    parallelism = models.PositiveIntegerField(default=10)
    priority = models.PositiveSmallIntegerField(
        default=0,
        validators=[MaxValueValidator(MAX_RUN_PRIORITY)],
        help_text="Higher first: each instance message carries it, for the queue's engine to "
        "order by (the database queue, a RabbitMQ priority queue; SQS and Kafka ignore it).",
    )
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.PYTHON)
    not_before = models.DateTimeField(null=True, blank=True)
    deadline = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    source = models.CharField(
        max_length=200,
        null=True,
        blank=True,
        unique=True,
        help_text="What started the run, when that must happen once (a start_job message id).",
    )
    total = models.PositiveIntegerField(default=0)
    released = models.PositiveIntegerField(default=0)
    finished = models.PositiveIntegerField(default=0)
    completed = models.PositiveIntegerField(default=0)
    errored = models.PositiveIntegerField(default=0)
    cancelled = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "created_at"], name="jobs_run_state_time")]

    def __str__(self) -> str:
        return f"{self.job} run {self.id} ({self.state})"

    @property
    def in_flight(self) -> int:
        return self.released - self.finished

    @property
    def percent(self) -> float:
        return 100.0 * self.finished / self.total if self.total else 100.0


class JobInstance(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    run = models.ForeignKey(JobRun, on_delete=models.CASCADE, related_name="instances")
    index = models.PositiveIntegerField()
    params = models.JSONField()
    state = models.CharField(
        max_length=16, choices=InstanceState.choices, default=InstanceState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    #: How many times the instance was released (sent); its message carries the number, and a
    #: message of an earlier release is acknowledged without running it.
    dispatch = models.PositiveIntegerField(default=0)
    result = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    progress = models.JSONField(null=True, blank=True)
    reason = models.CharField(max_length=200, blank=True, default="")
    released_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "index"]
        constraints = [
            models.UniqueConstraint(fields=["run", "index"], name="jobs_instance_run_index")
        ]
        indexes = [
            models.Index(
                fields=["run", "index"],
                name="jobs_instance_unreleased",
                condition=models.Q(released_at__isnull=True, state="pending"),
            ),
            models.Index(fields=["run", "state", "index"], name="jobs_instance_run_state"),
        ]

    def __str__(self) -> str:
        return f"{self.run_id}#{self.index} ({self.state})"


class RunTransition(models.Model):
    """One state change of a run, with its time and why."""

    run = models.ForeignKey(JobRun, on_delete=models.CASCADE, related_name="transitions")
    from_state = models.CharField(max_length=24, blank=True)
    to_state = models.CharField(max_length=24)
    reason = models.CharField(max_length=300, blank=True, default="")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["run", "id"]

    def __str__(self) -> str:
        return f"{self.run_id}: {self.from_state or '∅'} → {self.to_state}"
