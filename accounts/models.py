"""API tokens: what scripts and external systems authenticate with.

A token is shown once, when it is created; only its SHA-256 digest is stored, so a database
leak does not leak working tokens. A token acts as its user, can be limited to named queues
for publishing, and can be revoked.

The model moved here from ``backoffice`` without moving its rows: it keeps the table
``backoffice_apitoken`` (and ``backoffice_apitoken_queues`` for its queues), and the two
apps' migrations hand it over in Django's state only (``accounts/migrations/0001``).
Queues are named by the string ``"queues.Queue"``, so this app imports nothing above it.
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

TOKEN_PREFIX = "qm_"


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def active(self) -> ApiTokenQuerySet:
        return self.filter(revoked_at__isnull=True)


class ApiToken(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=200)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    #: The first characters, shown in lists so a user can tell tokens apart.
    prefix = models.CharField(max_length=12, editable=False)
    #: Queues this token may publish to; none named means every queue.
    queues = models.ManyToManyField("queues.Queue", blank=True, related_name="api_tokens")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        db_table = "backoffice_apitoken"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(cls, user: models.Model, name: str) -> tuple[ApiToken, str]:
        """Create a token; returns it with the raw key, which is never available again."""
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(user=user, name=name, key_hash=digest(raw), prefix=raw[:10])
        return token, raw

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def revoke(self) -> None:
        self.revoked_at = timezone.now()
        self.save(update_fields=["revoked_at"])

    def allows_queue(self, queue_id: int) -> bool:
        scoped = list(self.queues.values_list("pk", flat=True))
        return not scoped or queue_id in scoped


class CacheEpoch(models.Model):
    """One row whose ``value`` database triggers change with every change to what API
    requests cache per process (``accounts.epoch``). Random, so a rolled-back change (a
    test's) cannot bring back a value some process kept entries under."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"cache epoch {self.value}"
