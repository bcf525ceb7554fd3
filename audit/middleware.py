"""Sets the audit context (``audit.context``) for each web request: the session's user and
the client's address. Placed after Django's authentication middleware; an API request made
with a token is switched to the token by ``accounts.authentication`` when DRF authenticates
it. The user is read lazily, when a row is written, so a request that records nothing costs
nothing more."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from audit import context


class AuditContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = context.activate_request(request)
        try:
            return self.get_response(request)
        finally:
            context.deactivate(token)
