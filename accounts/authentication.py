"""DRF authentication by API token: ``Authorization: Bearer qm_…`` (or ``Token qm_…``).

A token's lookup (the token, its user and the queues it is limited to) is kept per process
under the cache epoch (``accounts.epoch``), so a busy API client does not cost a query or two
per request, and any change to a token, its queues, its user or the user's groups and
permissions takes effect at the next request in every process. The user object kept with it
also keeps Django's permission cache, under the same epoch.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts import epoch
from accounts.models import ApiToken, digest
from quaymaster import logs

SCHEMES = {b"bearer", b"token"}
#: ``last_used_at`` is refreshed at most this often, so reads do not all become writes.
TOUCH_EVERY = dt.timedelta(minutes=1)


def _lookup(key_hash: str) -> ApiToken | None:
    """The token with this digest, its user loaded and ``scoped_queue_ids`` set."""
    return epoch.cache.get(("apitoken", key_hash), lambda: _load(key_hash))


def _load(key_hash: str) -> ApiToken | None:
    token = (
        ApiToken.objects.select_related("user")
        .defer("user__password")  # what a process keeps holds no password hash
        .filter(key_hash=key_hash)
        .first()
    )
    if token is not None:
        token.scoped_queue_ids = frozenset(token.queues.values_list("pk", flat=True))  # type: ignore[attr-defined]
    return token


def allows_queue(token: ApiToken, queue_id: int) -> bool:
    """``token.allows_queue`` without a query when the token came from this module."""
    scoped: frozenset[int] | None = getattr(token, "scoped_queue_ids", None)
    if scoped is None:
        return token.allows_queue(queue_id)
    return token.all_queues or queue_id in scoped


def queue_limit(token: Any) -> frozenset[int] | None:
    """The queue ids a request's token is limited to; None when it is not limited (a token
    with all queues, or no token: a browser session)."""
    if not isinstance(token, ApiToken) or token.all_queues:
        return None
    scoped: frozenset[int] | None = getattr(token, "scoped_queue_ids", None)
    if scoped is None:
        scoped = frozenset(token.queues.values_list("pk", flat=True))
    return scoped


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
        logs.bind(token_id=token.pk)  # on the request's log lines (quaymaster.logs)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'
