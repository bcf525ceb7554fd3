"""Who may open a back-office page. The pages ask the same questions as the REST API
(``zstorage.permissions``), so a business user sees exactly what their token would."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse

from accounts.roles import is_admin
from zstorage.models import Table
from zstorage.permissions import Action, can

View = Callable[..., HttpResponse]


def admin_required(view: View) -> View:
    """Login first (a redirect), then admins only (403): schema pages are not for everyone."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not is_admin(request.user):
            raise PermissionDenied("Only admins may open this page.")
        return view(request, *args, **kwargs)

    return login_required(wrapped)


def table_for(request: HttpRequest, slug: str, action: Action = Action.VIEW) -> Table:
    """The table, or 404 when the user may not even see it, so a page does not reveal that a
    table exists; 403 when they see it but may not do ``action``."""
    table = Table.objects.filter(slug=slug).first()
    if table is None or not can(request.user, table, Action.VIEW):
        raise Http404(f"No table {slug!r}.")
    if not can(request.user, table, action):
        raise PermissionDenied(f"You may not {action.value} records of {table.name}.")
    return table


def allowed_actions(request: HttpRequest, table: Table) -> dict[str, bool]:
    """What the page may offer (buttons it shows), keyed by action name for templates."""
    return {action.value: can(request.user, table, action) for action in Action}


def partial_for(request: HttpRequest, target: str) -> bool:
    """Whether htmx asked for the part of the page with id ``target`` only.

    A history-restore request (back button after a cache miss) needs the whole page."""
    htmx = getattr(request, "htmx", None)
    if htmx is None or not htmx:
        return False
    return not htmx.history_restore_request and htmx.target == target
