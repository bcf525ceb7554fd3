"""What the back-office shows of the workers: live processes and the messages' lifecycle log;
and the webhook endpoints the built-in ``webhook`` handler may post to.

``Lock`` rows implement ``ctx.lock`` on SQLite (PostgreSQL uses advisory locks instead).
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from queues import crypto
from queues.models import Queue
from workers.webhook_client import check_url

#: Seconds between two heartbeats of a worker process.
DEFAULT_HEARTBEAT_SECONDS = 5.0
#: A worker whose last heartbeat is older than this many intervals is shown as lost.
LOST_AFTER_INTERVALS = 3


def heartbeat_seconds() -> float:
    seconds = getattr(settings, "QUAYMASTER_WORKER_HEARTBEAT_SECONDS", DEFAULT_HEARTBEAT_SECONDS)
    return float(seconds)


def lost_after() -> timedelta:
    return timedelta(seconds=heartbeat_seconds() * LOST_AFTER_INTERVALS)


class WorkerState(models.TextChoices):
    RUNNING = "running", "Running"
    DRAINING = "draining", "Draining"
    STOPPED = "stopped", "Stopped"
    LOST = "lost", "Lost"  # never stored: a running worker that stopped heartbeating


class WorkerProcessQuerySet(models.QuerySet["WorkerProcess"]):
    def alive(self) -> WorkerProcessQuerySet:
        """Running or draining, with a recent heartbeat."""
        return self.filter(stopped_at__isnull=True, heartbeat_at__gte=timezone.now() - lost_after())


class WorkerProcess(models.Model):
    """One ``runworker`` process. Its counters are totals since it started."""

    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="worker_processes")
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    concurrency = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    heartbeat_at = models.DateTimeField(default=timezone.now)
    draining_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    in_flight = models.PositiveIntegerField(default=0)
    held_back = models.PositiveIntegerField(
        default=0, help_text="Fetched, waiting for their ordering key (per-key order)."
    )
    processed = models.PositiveBigIntegerField(default=0, help_text="Acknowledged.")
    failed = models.PositiveBigIntegerField(default=0, help_text="Handler raised.")
    retried = models.PositiveBigIntegerField(default=0)
    dead_lettered = models.PositiveBigIntegerField(default=0)

    objects = WorkerProcessQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["queue", "heartbeat_at"], name="workers_proc_heartbeat")]

    def __str__(self) -> str:
        return f"{self.host}:{self.pid} ({self.queue_id})"

    @property
    def state(self) -> WorkerState:
        if self.stopped_at is not None:
            return WorkerState.STOPPED
        if self.heartbeat_at < timezone.now() - lost_after():
            return WorkerState.LOST
        if self.draining_at is not None:
            return WorkerState.DRAINING
        return WorkerState.RUNNING


class EventKind(models.TextChoices):
    STARTED = "started", "Started"
    COMPLETE = "complete", "Complete"
    FAILED = "failed", "Failed"
    RETRIED = "retried", "Retried"
    DEAD_LETTERED = "dead_lettered", "Dead-lettered"
    LOG = "log", "Log"


class Level(models.TextChoices):
    DEBUG = "debug", "Debug"
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"

    @classmethod
    def at_least(cls, level: str) -> list[str]:
        """This level and the more severe ones."""
        order = list(cls.values)
        return order[order.index(level) :]


class LifecycleEvent(models.Model):
    """One line of a message's life: started, complete, failed, retried, dead-lettered, or a
    handler's ``ctx.log`` line. ``queue`` is the queue's name at the time (a log outlives
    renames); ``duration_ms`` is the handler's run time."""

    queue = models.CharField(max_length=80)
    message_id = models.CharField(max_length=100, blank=True)
    handler = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=16, choices=EventKind.choices)
    level = models.CharField(max_length=8, choices=Level.choices, default=Level.INFO)
    detail = models.TextField(blank=True)
    attempt = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    worker = models.ForeignKey(
        WorkerProcess,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="events",
        db_constraint=False,  # events are written in batches; a pruned worker row is no error
    )
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["queue", "id"], name="workers_event_queue"),
            models.Index(fields=["message_id"], name="workers_event_message"),
            models.Index(fields=["at"], name="workers_event_at"),
        ]

    def __str__(self) -> str:
        return f"{self.queue} {self.message_id} {self.kind}"

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.pk,
            "queue": self.queue,
            "message_id": self.message_id,
            "handler": self.handler,
            "kind": self.kind,
            "level": self.level,
            "detail": self.detail,
            "attempt": self.attempt,
            "duration_ms": self.duration_ms,
            "worker": self.worker_id,
            "at": self.at.isoformat(),
        }


class Lock(models.Model):
    """A named lock on databases without advisory locks (SQLite): held by ``owner`` until
    released or until ``expires_at`` (a crashed holder does not block others forever)."""

    name = models.CharField(max_length=255, unique=True)
    owner = models.CharField(max_length=255)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} ({self.owner})"


def validate_webhook_url(value: str) -> None:
    try:
        check_url(value)
    except ValueError as exc:
        raise ValidationError(str(exc), code="invalid_url") from None


class WebhookEndpoint(crypto.EncryptedSecret, models.Model):
    """Where the built-in ``webhook`` handler may post, configured by admins: a message names
    the endpoint and brings only the payload, never the URL or the secret. Only the queues
    listed here may use it. The signing secret is stored only as Fernet ciphertext
    (``queues.crypto``, the queues' keys) and never shown back; blank: unsigned."""

    name = models.SlugField(
        max_length=80,
        unique=True,
        help_text='What messages name in "endpoint": letters, digits, "-" and "_".',
    )
    url = models.CharField(
        "URL",
        max_length=500,
        validators=[validate_webhook_url],
        help_text="http:// or https://; it must reach a public address (or one inside "
        "QUAYMASTER_WEBHOOK_ALLOWED_NETWORKS), which is checked at each send after DNS.",
    )
    secret_ciphertext = models.TextField(
        blank=True, editable=False, help_text="The signing secret, Fernet-encrypted."
    )
    timeout = models.PositiveSmallIntegerField(
        "timeout (seconds)",
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(30)],
        help_text="How long one attempt may take in all, 1 to 30 seconds.",
    )
    queues = models.ManyToManyField(
        Queue,
        blank=True,
        related_name="webhook_endpoints",
        help_text="The queues whose messages may post to it.",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def host(self) -> str:
        """The URL's host, lower-case ("" for a URL without one)."""
        try:
            return (urlsplit(self.url).hostname or "").lower()
        except ValueError:
            return ""
