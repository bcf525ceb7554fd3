"""Login brute-force protection: django-axes, wired to this project's login pages.

Axes counts failed logins in the database (``axes.AccessAttempt``, shared by every web
process) per username *and* client address together, so an attacker who guesses one user's
password is stopped without locking that user out from anywhere else. Once
``QUAYMASTER_LOGIN_FAILURE_LIMIT`` failures are counted, the pair is refused, right password
included, until ``QUAYMASTER_LOGIN_COOLOFF_MINUTES`` after the last counted failure; a
successful login clears the pair's count. The settings (``AXES_*`` in ``quaymaster.settings``)
name the pieces below, and ``audit.context.client_ip`` for the address a failure is counted
against:

- ``LoginLockoutBackend``: axes' backend, first in ``AUTHENTICATION_BACKENDS``.
- ``LoginAttemptHandler``: axes' database handler, storing only what its columns hold.
- ``username``: the name a failure is counted against.
- ``lockout_response``: the login page that refused (the back-office's or the Django admin's),
  with status 429, a ``Retry-After`` header and a message saying when to try again.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username, get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import NON_FIELD_ERRORS
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.dateformat import format as format_date
from django.utils.timesince import timeuntil

STATUS = 429


class LoginLockoutBackend(AxesStandaloneBackend):
    """Refuses a login while its username and address are locked; authenticates no one itself
    (``ModelBackend`` after it does).

    Axes refuses ``authenticate()`` calls without a request (it raises). Every login a client
    can reach over HTTP (the back-office's and the admin's login views) passes its request; a
    call without one comes from code run on the server, such as the test client's ``login()``
    or a shell, where there is no address to count against: it passes through, uncounted."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


class LoginAttemptHandler(AxesDatabaseHandler):
    """Axes' database handler, given request details its columns can store: PostgreSQL
    refuses a NUL character in text (axes strips it from the form data only), so a header
    holding one would turn a failed login into a 500."""

    def user_login_failed(
        self, sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any
    ) -> None:
        _storable(request)
        super().user_login_failed(sender, credentials, request, **kwargs)

    def user_logged_in(self, sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
        _storable(request)
        super().user_logged_in(sender, request, user, **kwargs)

    def user_logged_out(self, sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
        _storable(request)
        super().user_logged_out(sender, request, user, **kwargs)


def _storable(request: Any) -> None:
    for name in ("axes_user_agent", "axes_http_accept", "axes_path_info"):
        value = getattr(request, name, None)
        if isinstance(value, str):
            setattr(request, name, value.replace("\x00", ""))


#: The ``username`` column's length in axes' tables.
USERNAME_MAX = 255


def username(request: HttpRequest, credentials: dict[str, Any] | None) -> str | None:
    """The name a login tried, as axes stores and counts it: without NUL characters and cut
    to its column (Django's login form does not limit a name's length before authenticating,
    and no user's name is that long, so the cut names no real user)."""
    field = getattr(settings, "AXES_USERNAME_FORM_FIELD", "username")
    if credentials:
        value = credentials.get(field)
    else:
        value = getattr(request, "data", request.POST).get(field)
    if not isinstance(value, str):
        return None
    return value.replace("\x00", "")[:USERNAME_MAX]


def locked_until(request: HttpRequest, credentials: dict[str, Any] | None) -> datetime:
    """When the lock on this request's username and address ends: the cool-off after the last
    counted failure (failures while locked are not counted, so this does not move)."""
    cool_off = get_cool_off(request) or timedelta(0)
    last = AccessAttempt.objects.filter(
        username=get_client_username(request, credentials),
        ip_address=getattr(request, "axes_ip_address", None),
    ).aggregate(last=Max("attempt_time"))["last"]
    return (last or timezone.now()) + cool_off


def lockout_message(until: datetime) -> str:
    """Says the minute the lock ends, rounded up: "until 17:36 UTC (in 15 minutes)"."""
    now = timezone.now()
    minute = until.replace(second=0, microsecond=0)
    if minute < until:
        minute += timedelta(minutes=1)
    when = format_date(timezone.localtime(minute), "H:i T")
    return (
        "Too many failed logins for this username from your address. Logging in is blocked "
        f"until {when} (in {timeuntil(minute, now)}); try again then."
    )


def lockout_response(
    request: HttpRequest, original_response: Any = None, credentials: Any = None
) -> HttpResponse:
    """The login page that refused, re-rendered with the lockout message as its form error.

    Both login views (``LoginView`` and the admin site's) answer a refused login with a
    ``TemplateResponse`` holding the form; anything else gets the back-office's login page."""
    if isinstance(original_response, dict) and credentials is None:
        # Axes' middleware under ASGI passes the credentials in the response's place.
        original_response, credentials = None, original_response
    until = locked_until(request, credentials)
    message = lockout_message(until)
    if isinstance(original_response, TemplateResponse) and original_response.context_data:
        template = original_response.template_name
        context = dict(original_response.context_data)
    else:  # an empty form (a bound one would authenticate again to find its errors)
        template = "registration/login.html"
        name = get_client_username(request, credentials) or ""
        context = {"form": AuthenticationForm(request, initial={"username": name})}
    form = context.get("form")
    if form is not None and form.is_bound:
        form.errors[NON_FIELD_ERRORS] = form.error_class(
            [message], error_class="nonfield", renderer=form.renderer
        )
    context["lockout"] = message
    response = TemplateResponse(request, template, context, status=STATUS)
    seconds = max(1, math.ceil((until - timezone.now()).total_seconds()))
    response["Retry-After"] = str(seconds)
    return response.render()
