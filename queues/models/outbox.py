"""Table-to-queue links, and the transactional outbox the relay publishes from."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class QueueLink(models.Model):
    """Publish a table's record events to a queue, for the chosen kinds of change, when the
    record matches ``filter`` (ZStorage's query language; empty matches every record)."""

    table = models.ForeignKey("zstorage.Table", on_delete=models.CASCADE, related_name="links")
    queue = models.ForeignKey("queues.Queue", on_delete=models.CASCADE, related_name="links")
    on_create = models.BooleanField(default=True)
    on_update = models.BooleanField(default=True)
    on_delete = models.BooleanField(default=True)
    filter = models.JSONField(default=dict, blank=True)
    handler = models.CharField(max_length=200, help_text="The handler named in each message.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["table", "queue", "id"]

    def __str__(self) -> str:
        return f"{self.table} → {self.queue} ({self.handler})"

    def publishes(self, kind: str) -> bool:
        return bool(getattr(self, f"on_{kind}", False))


class OutboxState(models.TextChoices):
    PENDING = "pending", "Pending"
    PUBLISHED = "published", "Published"
    FAILED = "failed", "Failed (needs an admin)"


class OutboxMessage(models.Model):
    """A message written in the same transaction as the record change it describes.

    The relay publishes pending rows of a queue in id order (per-record commit order: writes
    to one record are serialised by its row lock), marks them published, and deletes them
    after the retention period.
    """

    message_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    queue = models.ForeignKey("queues.Queue", on_delete=models.CASCADE, related_name="outbox")
    ordering_key = models.CharField(max_length=255, blank=True)
    body = models.JSONField()
    priority = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="The message's priority (None: not given)."
    )
    state = models.CharField(
        max_length=10, choices=OutboxState.choices, default=OutboxState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    available_at = models.DateTimeField(default=timezone.now)
    broker_ref = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["queue", "id"],
                name="queues_outbox_pending",
                condition=models.Q(state="pending"),
            ),
            models.Index(fields=["state", "published_at"], name="queues_outbox_state_time"),
        ]

    def __str__(self) -> str:
        return f"{self.message_id} → {self.queue_id} ({self.state})"


class RelayLease(models.Model):
    """Which relay publishes a queue right now: one at a time per queue keeps per-record
    order with several relays running. A lease expires, so a killed relay's queues are
    taken over."""

    queue = models.OneToOneField("queues.Queue", on_delete=models.CASCADE, related_name="lease")
    owner = models.CharField(max_length=200, blank=True)
    expires_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.queue_id} held by {self.owner or 'nobody'} until {self.expires_at}"


class IdempotencyKey(models.Model):
    """The first answer to a publish request with an ``Idempotency-Key`` header, replayed
    for a repeat of the same key by the same user."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    queue = models.ForeignKey("queues.Queue", on_delete=models.CASCADE, related_name="+")
    response = models.JSONField(null=True, blank=True)
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="queues_idempotency_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key}"
