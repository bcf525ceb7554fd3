"""Replays: a link's records sent again, from their current version, as ``replay`` events.

A replay is the work and its progress in one row: which link, which records (``selection``,
checked when it was started), the rate, the state, and the **cursor** (the last record id
written to the outbox). The driver (``queues.replay.driver``) writes each chunk's outbox rows
and moves the cursor in one transaction, so a replay resumed after any crash starts exactly
after the last chunk that committed. ``owner``/``lease_expires_at`` say which process runs it;
a lease that expired (its process died) is taken over by the next runner.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class ReplayState(models.TextChoices):
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


ENDED_STATES = frozenset({ReplayState.COMPLETED, ReplayState.CANCELLED, ReplayState.FAILED})


class Replay(models.Model):
    """``selection``: ``{"filter"?, "ids"?, "changed_from"?, "changed_to"?}``, all applying
    together (with the link's own filter), over records whose id is at most ``last_id`` (the
    table's newest when the replay started: later records have their own create events)."""

    replay_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    link = models.ForeignKey(
        "queues.QueueLink", on_delete=models.SET_NULL, null=True, related_name="replays"
    )
    queue = models.ForeignKey("queues.Queue", on_delete=models.CASCADE, related_name="replays")
    table = models.ForeignKey("zstorage.Table", on_delete=models.CASCADE, related_name="+")
    handler = models.CharField(max_length=200)
    selection = models.JSONField(default=dict, blank=True)
    rate = models.PositiveIntegerField(help_text="Records written to the outbox per second.")
    state = models.CharField(
        max_length=10, choices=ReplayState.choices, default=ReplayState.RUNNING
    )
    reason = models.TextField(blank=True, help_text="Why it failed or was cancelled.")
    last_id = models.BigIntegerField(help_text="The newest record id the replay may send.")
    cursor = models.BigIntegerField(default=0, help_text="The last record id written.")
    total = models.PositiveBigIntegerField(help_text="Records selected when it started.")
    written = models.PositiveBigIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    owner = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["state", "id"], name="queues_replay_state")]

    def __str__(self) -> str:
        return f"replay {self.pk} of {self.table_id} → {self.queue_id} ({self.state})"

    @property
    def ended(self) -> bool:
        return self.state in ENDED_STATES

    @property
    def percent(self) -> int:
        if self.state == ReplayState.COMPLETED or not self.total:
            return 100 if self.state == ReplayState.COMPLETED else 0
        return min(100, int(self.written * 100 / self.total))
