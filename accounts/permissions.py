"""The API's permissions: ``TokenScope``, which every API view applies (the default, and
beside any view's own), and ``IsPlatformAdmin`` for admin-only views (queues, jobs,
schedules): authenticated and an admin (a superuser or a member of the admins group,
``accounts.roles.is_admin``). A view's app may subclass it to say what is refused in its own
words (``message``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework import permissions

if TYPE_CHECKING:  # DRF imports this module while rest_framework.views is being imported
    from rest_framework.request import Request
    from rest_framework.views import APIView

from accounts.roles import is_admin
from accounts.scopes import AnyScope, required


class IsPlatformAdmin(permissions.BasePermission):
    message = "Only admins may do this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return is_admin(request.user)


class TokenScope(permissions.BasePermission):
    """Refuse a token request whose token lacks the scope the view needs (403
    ``token_scope``, naming the scope). Requests without a token pass: other permissions
    decide for them."""

    code = "token_scope"

    def has_permission(self, request: Request, view: APIView) -> bool:
        scopes = getattr(request.auth, "scope_set", None)
        if scopes is None:  # a session, or no authentication at all
            return True
        needed = required(view, request.method or "GET")
        if isinstance(needed, AnyScope):
            return True
        if needed is None:
            self.message = "API tokens may not call this endpoint."
            return False
        if needed not in scopes:
            self.message = (
                f"This token lacks the {needed.value!r} scope ({needed.label.lower()}); "
                "create a token with it."
            )
            return False
        return True
