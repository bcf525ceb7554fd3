"""The audit trail's one model: an append-only row per admin or destructive action.

Rows are written by ``audit.trail.record`` and never changed: saving a row that already exists
or deleting one raises ``AuditTrailError``. The one way rows leave is retention
(``audit.housekeeping.prune``), a queryset delete of rows older than the retention period.

Who and where are snapshots (username, token name, object label), so a row still reads right
after the user, the token or the object is gone; the user is also kept as a nullable key for
filtering.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from audit.errors import AppendOnlyError


class Via(models.TextChoices):
    WEB = "web", "Back-office"
    API = "api", "API"
    COMMAND = "command", "Command"
    SYSTEM = "system", "System"


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    """Refuses bulk changes and deletes too; ``audit.housekeeping.prune`` deletes past
    retention through ``models.QuerySet.delete`` itself."""

    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("Audit events are append-only: rows cannot be updated.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("Audit events are append-only: rows are removed by retention only.")


class AuditEvent(models.Model):
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    # The user's id as it was, not a foreign key: deleting the user changes no audit row.
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_name = models.CharField(max_length=150, blank=True)
    token_id = models.BigIntegerField(null=True, blank=True)
    token_name = models.CharField(max_length=200, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    via = models.CharField(max_length=10, choices=Via.choices, default=Via.SYSTEM)
    action = models.CharField(max_length=100)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=100, blank=True)
    object_label = models.CharField(max_length=300, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["action", "-at"], name="audit_action_at"),
            models.Index(fields=["actor_name", "-at"], name="audit_actor_at"),
            models.Index(fields=["actor_id", "-at"], name="audit_actor_id_at"),
            models.Index(fields=["object_type", "object_id", "-at"], name="audit_object_at"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name or self.via} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("Audit events are append-only: a row cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("Audit events are append-only: a row cannot be deleted.")
