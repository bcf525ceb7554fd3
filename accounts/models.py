"""API tokens: what scripts and external systems authenticate with.

A token is shown once, when it is created; only its SHA-256 digest is stored, so a database
leak does not leak working tokens. A token acts as its user within its scopes
(``accounts.scopes``), publishes only to its queues (or to all, when ``all_queues`` says so
explicitly: an empty list is no queue), and can be revoked.

The model moved here from ``backoffice`` without moving its rows: it keeps the table
``backoffice_apitoken`` (and ``backoffice_apitoken_queues`` for its queues), and the two
apps' migrations hand it over in Django's state only (``accounts/migrations/0001``).
Queues are named by the string ``"queues.Queue"``, so this app imports nothing above it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from accounts.scopes import ALL_SCOPES, Scope, parse
from audit import trail

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
    #: What the token may be used for: ``accounts.scopes.Scope`` values.
    scopes = models.JSONField(default=list, blank=True)
    #: Publish to (and, with the admin scope, manage) every queue, present and future.
    all_queues = models.BooleanField(default=False)
    #: Otherwise, the queues it may publish to and manage; none is none.
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
    def issue(
        cls,
        user: models.Model,
        name: str,
        *,
        scopes: Iterable[Scope] = ALL_SCOPES,
        all_queues: bool = True,
        queues: Iterable[models.Model] = (),
    ) -> tuple[ApiToken, str]:
        """Create a token (limited to ``queues`` without ``all_queues``) and its audit row;
        returns it with the raw key, which is never available again."""
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with transaction.atomic():
            token = cls.objects.create(
                user=user,
                name=name,
                key_hash=digest(raw),
                prefix=raw[:10],
                scopes=sorted(Scope(s).value for s in set(scopes)),
                all_queues=all_queues,
            )
            limited = list(queues)
            if limited:
                token.queues.set(limited)  # type: ignore[arg-type]  # queues.Queue, named by string
            trail.record("token.create", token, after=token.audited(limited))
        return token, raw

    def audited(self, queues: Iterable[models.Model] | None = None) -> dict[str, object]:
        """What the audit trail keeps of the token (never its key: only its prefix)."""
        listed = self.queues.all() if queues is None else queues
        return {
            "name": self.name,
            "owner": self.user.get_username(),
            "prefix": self.prefix,
            "scopes": list(self.scopes),
            "all_queues": self.all_queues,
            "queues": sorted(str(q) for q in listed),
        }

    @property
    def scope_set(self) -> frozenset[Scope]:
        return parse(self.scopes)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def revoke(self) -> None:
        self.revoked_at = timezone.now()
        with transaction.atomic():
            self.save(update_fields=["revoked_at"])
            trail.record("token.revoke", self, before=self.audited())

    def allows_queue(self, queue_id: int) -> bool:
        return self.all_queues or self.queues.filter(pk=queue_id).exists()


class CacheEpoch(models.Model):
    """One row whose ``value`` database triggers change with every change to what API
    requests cache per process (``accounts.epoch``). Random, so a rolled-back change (a
    test's) cannot bring back a value some process kept entries under."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"cache epoch {self.value}"
