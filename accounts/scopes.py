"""What an API token may be used for: its scopes, and the permission every API view checks.

A token carries explicit scopes; a request made with it may do what its user may do *and*
what its scopes allow, never more:

- ``publish``: put messages on queues (and then only on the token's queues, or on every
  queue when it was given "all queues"; a token whose queue list is empty publishes nowhere);
- ``read``: read tables and records the user was granted;
- ``write``: create, change and delete those records;
- ``admin``: administer queues, the schema, jobs and schedules, and read the audit trail (the
  user must be an admin too). A queue-limited admin token sees and manages only its queues,
  and cannot read the audit trail (it names every queue).

Every API view says which scope it needs with ``token_scope``: one scope, or a pair
``(for reading, for changing)`` chosen by the request's method. A view that says nothing is
closed to tokens (``accounts.permissions.TokenScope`` refuses), so a new endpoint cannot be
reached by a narrow token by omission; ``tests/accounts/test_scopes.py`` walks every API URL
to hold this.
A browser session is not a token: it gets its user's rights, unchanged.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class Scope(StrEnum):
    PUBLISH = "publish"
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    @property
    def label(self) -> str:
        return LABELS[self]


LABELS = {
    Scope.PUBLISH: "Publish messages to its queues",
    Scope.READ: "Read tables and records",
    Scope.WRITE: "Create, change and delete records",
    Scope.ADMIN: "Administer queues, schema, jobs and schedules",
}

ALL_SCOPES: tuple[Scope, ...] = tuple(Scope)


class AnyScope:
    """``token_scope = ANY``: any live token may call the view (e.g. ``/api/v1/me``)."""

    def __repr__(self) -> str:
        return "ANY"


ANY = AnyScope()


def parse(values: Any) -> frozenset[Scope]:
    """The scopes among ``values`` (what is not a scope is dropped)."""
    if not isinstance(values, list | tuple | set | frozenset):
        return frozenset()
    known = {s.value for s in Scope}
    return frozenset(Scope(v) for v in values if isinstance(v, str) and v in known)


def required(view: Any, method: str) -> Scope | AnyScope | None:
    """The scope ``view`` needs for ``method``; None when it declares none (closed to tokens)."""
    declared = getattr(view, "token_scope", None)
    if isinstance(declared, tuple):
        reading, changing = declared
        return reading if method in SAFE_METHODS else changing
    return declared
