"""DRF authentication by API token: ``Authorization: Bearer qm_…`` (or ``Token qm_…``).

A token's lookup (the token, its user and the queues it is limited to) is kept in Django's
cache for ``CACHE_SECONDS``, so a busy API client does not cost a query or two per request.
Saving or deleting a token, changing its queues, or saving its user drops the
entry at once in the process that made the change (and everywhere, when ``CACHE_URL`` is a
shared cache); other processes with the default per-process cache see the change within
``CACHE_SECONDS``. Permissions are not cached: they are read per request as before.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.models import ApiToken, digest

SCHEMES = {b"bearer", b"token"}
#: ``last_used_at`` is refreshed at most this often, so reads do not all become writes.
TOUCH_EVERY = dt.timedelta(minutes=1)
#: How long a token's lookup is kept (the longest a change made elsewhere takes to apply).
CACHE_SECONDS = 5


def _cache_key(key_hash: str) -> str:
    return f"qm:apitoken:{key_hash}"


def _lookup(key_hash: str) -> ApiToken | None:
    """The token with this digest, its user loaded and ``scoped_queue_ids`` set."""
    key = _cache_key(key_hash)
    token: ApiToken | None = cache.get(key)
    if token is not None:
        return token
    token = (
        ApiToken.objects.select_related("user")
        .defer("user__password")  # the cache (shared with CACHE_URL) never holds a hash
        .filter(key_hash=key_hash)
        .first()
    )
    if token is None:
        return None  # unknown tokens are not remembered: each costs its query
    token.scoped_queue_ids = frozenset(token.queues.values_list("pk", flat=True))  # type: ignore[attr-defined]
    cache.set(key, token, CACHE_SECONDS)
    return token


def allows_queue(token: ApiToken, queue_id: int) -> bool:
    """``token.allows_queue`` without a query when the token came from this module."""
    scoped: frozenset[int] | None = getattr(token, "scoped_queue_ids", None)
    if scoped is None:
        return token.allows_queue(queue_id)
    return not scoped or queue_id in scoped


class ApiTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() not in SCHEMES:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Send 'Authorization: Bearer <token>'.")
        token = _lookup(digest(parts[1].decode(errors="replace")))
        if token is None:
            raise exceptions.AuthenticationFailed("Unknown API token.")
        if token.revoked:
            raise exceptions.AuthenticationFailed("This API token was revoked.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("This token's user is inactive.")
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
            cache.set(_cache_key(token.key_hash), token, CACHE_SECONDS)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


# -- dropping cached lookups when what they hold changes ---------------------------------------


def _forget(key_hashes: Any) -> None:
    keys = [_cache_key(h) for h in key_hashes if h]
    if keys:
        cache.delete_many(keys)


def _token_changed(sender: Any, instance: ApiToken, **_: Any) -> None:
    _forget([instance.key_hash])


def _token_queues_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **_: Any
) -> None:
    if not action.startswith("post_"):
        return
    if not reverse:
        _forget([instance.key_hash])
    else:  # queue.api_tokens.add(...) and the like: the tokens are in pk_set (None on clear)
        tokens = (
            instance.api_tokens.all() if pk_set is None else ApiToken.objects.filter(pk__in=pk_set)
        )
        _forget(tokens.values_list("key_hash", flat=True))


def _user_changed(sender: Any, instance: Any, update_fields: Any = None, **_: Any) -> None:
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return  # every login saves last_login: nothing a token lookup holds
    if instance.pk is not None:
        _forget(ApiToken.objects.filter(user_id=instance.pk).values_list("key_hash", flat=True))


post_save.connect(_token_changed, sender=ApiToken, dispatch_uid="apitoken-cache-save")
post_delete.connect(_token_changed, sender=ApiToken, dispatch_uid="apitoken-cache-delete")
m2m_changed.connect(
    _token_queues_changed, sender=ApiToken.queues.through, dispatch_uid="apitoken-cache-queues"
)
post_save.connect(_user_changed, sender=get_user_model(), dispatch_uid="apitoken-cache-user")
