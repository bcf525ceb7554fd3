"""Schedules: start a job run, or publish a message, on a cron expression, every N seconds,
or once at a given time — and every fire, with what it did.

Celery beat (django-celery-beat's database scheduler) sends the ``jobs.fire_schedule`` task
when a schedule is due; each ``Schedule`` owns the ``PeriodicTask`` row beat reads, kept in
step by ``jobs.schedules``. A fire is recorded as one ``ScheduleFire`` per schedule and due
time (a unique row), so two beats sending the same fire — by mistake — act once.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ScheduleAction(models.TextChoices):
    START_JOB = "start_job", "Start a job run"
    PUBLISH = "publish", "Publish a message"


class ScheduleKind(models.TextChoices):
    CRON = "cron", "Cron expression"
    INTERVAL = "interval", "Every N seconds"
    ONCE = "once", "Once, at a time"


class CatchUp(models.TextChoices):
    """What a fire that comes late (beat was down at its due time) does."""

    SKIP = "skip", "Skip fires missed while beat was down"
    RUN_ONCE = "run_once", "Run once for the fires missed"


class Schedule(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True, default="")
    enabled = models.BooleanField(default=True)
    action = models.CharField(max_length=16, choices=ScheduleAction.choices)
    # start_job: the job, its parameters, the run's options.
    job = models.CharField(max_length=200, blank=True, default="")
    params = models.JSONField(default=list, blank=True)
    parallelism = models.PositiveIntegerField(default=10)
    # start_job: the run's queue (the default job queue when empty); publish: the target.
    queue = models.ForeignKey(
        "queues.Queue", on_delete=models.PROTECT, null=True, blank=True, related_name="schedules"
    )
    message = models.JSONField(default=dict, blank=True)
    kind = models.CharField(max_length=16, choices=ScheduleKind.choices)
    cron = models.CharField(max_length=200, blank=True, default="")
    every_seconds = models.PositiveIntegerField(null=True, blank=True)
    run_at = models.DateTimeField(null=True, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    catch_up = models.CharField(max_length=16, choices=CatchUp.choices, default=CatchUp.RUN_ONCE)
    #: The row Celery beat reads; created, changed and deleted with the schedule.
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class FireOutcome(models.TextChoices):
    STARTED = "started", "Started a run"
    PUBLISHED = "published", "Published a message"
    SKIPPED = "skipped", "Skipped (missed while beat was down)"
    FAILED = "failed", "Failed"


class ScheduleFire(models.Model):
    """One fire of a schedule: due when, done when, by beat or by hand, and what it did."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="fires")
    due_at = models.DateTimeField()
    fired_at = models.DateTimeField(default=timezone.now)
    manual = models.BooleanField(default=False)
    outcome = models.CharField(max_length=16, choices=FireOutcome.choices)
    run = models.ForeignKey(
        "jobs.JobRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    message_id = models.UUIDField(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-due_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["schedule", "due_at"],
                condition=models.Q(manual=False),
                name="jobs_fire_once_per_due_time",
            )
        ]
        indexes = [models.Index(fields=["schedule", "-fired_at"], name="jobs_fire_latest")]

    def __str__(self) -> str:
        return f"{self.schedule_id} @ {self.due_at:%Y-%m-%d %H:%M} ({self.outcome})"
