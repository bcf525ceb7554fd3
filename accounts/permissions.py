"""The API's permission for admin-only views (queues, jobs, schedules): authenticated and an
admin (a superuser or a member of the admins group, ``accounts.roles.is_admin``). A view's
app may subclass it to say what is refused in its own words (``message``)."""

from __future__ import annotations

from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.roles import is_admin


class IsPlatformAdmin(permissions.BasePermission):
    message = "Only admins may do this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return is_admin(request.user)
