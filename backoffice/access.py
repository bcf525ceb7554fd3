"""Who may open a back-office page, and the one way a page loads what its URL names.

The pages ask the same questions as the REST API (``zstorage.permissions``), so a business user
sees exactly what their token would.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase

from accounts.roles import is_admin
from zstorage.models import Table
from zstorage.permissions import Action, can

View = Callable[..., HttpResponseBase]
M = TypeVar("M", bound=Model)


def admin_required(view: View) -> View:
    """Login first (a redirect), then admins only (403): schema pages are not for everyone."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not is_admin(request.user):
            raise PermissionDenied("Only admins may open this page.")
        return view(request, *args, **kwargs)

    return login_required(wrapped)


def get_for(
    request: HttpRequest,
    source: type[M] | QuerySet[M],
    /,
    action: Action = Action.VIEW,
    **lookup: Any,
) -> M:
    """The one object ``lookup`` names in ``source``, checked for this user; else 404.

    404 too when the user may not even see it, so a page does not reveal that it exists; 403
    when they see it but may not ``action`` on it. Who sees what:
    - a table: its groups' grants (``zstorage.permissions``);
    - anything else: ``source``, narrowed by the caller to what the user may see (their own
      API tokens, the records of a table already loaded here), behind ``admin_required`` on
      the admin pages (queues and their links, fields, rules).
    """
    queryset = source if isinstance(source, QuerySet) else source._default_manager.all()
    found = queryset.filter(**lookup).first()
    if found is None:
        raise Http404(f"No {queryset.model._meta.verbose_name} matches the URL.")
    if isinstance(found, Table) and not is_admin(request.user):
        if not can(request.user, found, Action.VIEW):
            raise Http404(f"No table {found.slug!r}.")
        if not can(request.user, found, action):
            raise PermissionDenied(f"You may not {action.value} records of {found.name}.")
    return found


def table_for(request: HttpRequest, slug: str, action: Action = Action.VIEW) -> Table:
    """The table of a record page, checked for ``action`` (``get_for`` by slug)."""
    return get_for(request, Table, action, slug=slug)


def allowed_actions(request: HttpRequest, table: Table) -> dict[str, bool]:
    """What the page may offer (buttons it shows), keyed by action name for templates."""
    return {action.value: can(request.user, table, action) for action in Action}
