"""Who is acting, and from where: the context ``audit.trail.record`` writes into each row.

A web request sets it (``audit.middleware.AuditContextMiddleware`` keeps the request; its user
and address are read when a row is written, so a request made with an API token is seen as
the token once DRF has authenticated it: DRF sets ``user`` and ``auth`` on the request
itself); a management command is "command <name>" (read from ``manage.py <name>``, or set
with ``acting(for_command(...))``). Outside all of these the actor is "system" with the
process's name (a Celery worker, a test run).

The context lives in a ``contextvars.ContextVar``, so threads and asyncio tasks each see their
own; a request resets it when it ends.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from audit.models import Via


@dataclass(frozen=True)
class Actor:
    """Who did it: a user (id and name), maybe through an API token, from an address."""

    via: str = Via.SYSTEM
    user_id: int | None = None
    username: str = ""
    token_id: int | None = None
    token_name: str = ""
    remote_addr: str | None = None


_current: ContextVar[Actor | HttpRequest | None] = ContextVar("audit_actor", default=None)


def current() -> Actor:
    """The acting context, or "system" with this process's name when none is set."""
    actor = _current.get()
    if isinstance(actor, Actor):
        return actor
    if actor is not None:
        return from_request(actor)
    command = command_name()
    if command:
        return for_command(command)
    return Actor(via=Via.SYSTEM, username=f"system ({process_name()})")


def process_name() -> str:
    """The program's file name (a management command is named by ``command_name``)."""
    program = Path((sys.argv or [""])[0])
    if program.name == "__main__.py":  # python -m <package>
        return program.parent.name
    return program.name or "python"


def command_name() -> str:
    """The management command this process runs (``manage.py <name>``), or ""."""
    argv = sys.argv or [""]
    if Path(argv[0]).name in {"manage.py", "django-admin"} and len(argv) > 1:
        return argv[1]
    return ""


def activate(actor: Actor) -> Token[Actor | HttpRequest | None]:
    return _current.set(actor)


def activate_request(request: HttpRequest) -> Token[Actor | HttpRequest | None]:
    """Act as ``request``'s user, from its address, until ``deactivate``."""
    return _current.set(request)


def deactivate(token: Token[Actor | HttpRequest | None]) -> None:
    _current.reset(token)


@contextmanager
def acting(actor: Actor) -> Iterator[Actor]:
    """Run a block as ``actor`` (a command, a test, a job acting for a user)."""
    token = activate(actor)
    try:
        yield actor
    finally:
        deactivate(token)


def for_command(name: str) -> Actor:
    """The actor of a management command: "command <name>"."""
    return Actor(via=Via.COMMAND, username=f"command {name}")


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: ``REMOTE_ADDR``, or with ``QUAYMASTER_CLIENT_IP_HEADER`` set (a
    proxy in front that sets it), that header's last address: a proxy appends the address it
    saw to ``X-Forwarded-For``, so the earlier entries are whatever the client sent. A header
    that is missing or holds no valid address falls back to ``REMOTE_ADDR``. The one reading of
    it: the audit trail, the login lockout (axes) and ``/metrics`` all ask here."""
    header = getattr(settings, "QUAYMASTER_CLIENT_IP_META_KEY", "")
    if header:
        address = _valid_ip(request.META.get(header, "").split(",")[-1])
        if address:
            return address
    return _valid_ip(request.META.get("REMOTE_ADDR", ""))


def _valid_ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def from_request(request: HttpRequest) -> Actor:
    """The actor of a request: its user (if signed in), its token (if the API authenticated
    one, ``request.auth``), its address."""
    user = getattr(request, "user", None)  # DRF sets the token's user on the request itself
    signed_in = bool(user is not None and getattr(user, "is_authenticated", False))
    actor = Actor(
        via=Via.WEB,
        user_id=user.pk if signed_in else None,  # type: ignore[union-attr]
        username=user.get_username() if signed_in else "",  # type: ignore[union-attr]
        remote_addr=client_ip(request),
    )
    token = getattr(request, "auth", None)
    if _is_token(token):
        actor = with_token(actor, token)
    elif request.path.startswith("/api/"):
        actor = replace(actor, via=Via.API)
    return actor


def with_token(actor: Actor, token: Any) -> Actor:
    return replace(
        actor,
        via=Via.API,
        user_id=token.user_id,
        username=token.user.get_username(),
        token_id=token.pk,
        token_name=token.name,
    )


def _is_token(value: Any) -> bool:
    return value is not None and hasattr(value, "key_hash") and hasattr(value, "user_id")
