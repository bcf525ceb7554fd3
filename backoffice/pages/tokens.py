"""API tokens: every user manages their own; admins see and revoke everyone's.

A new token's key is shown once, in the answer to the request that created it, and never
stored (only its digest is): the page is rendered directly instead of redirecting, so the key
does not have to wait anywhere for the next request.
"""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import ApiToken
from accounts.roles import is_admin
from backoffice.access import get_for
from backoffice.forms.tokens import TokenForm


def _tokens(request: HttpRequest) -> QuerySet[ApiToken]:
    """Pages here are behind login_required, so the user is never anonymous."""
    tokens = ApiToken.objects.select_related("user").prefetch_related("queues")
    return tokens if is_admin(request.user) else tokens.filter(user=cast(User, request.user))


@never_cache
@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST or None, user=request.user)
    new_key = ""
    status = 200
    if request.method == "POST":
        if form.is_valid():
            _, new_key = ApiToken.issue(
                cast(User, request.user),
                form.cleaned_data["name"],
                scopes=form.chosen_scopes(),
                all_queues=form.chosen_all_queues(),
                queues=form.chosen_queues(),
            )
            form = TokenForm(user=request.user)
            status = 201
        else:
            status = 422
    return render(
        request,
        "backoffice/tokens.html",
        {
            "form": form,
            "tokens": _tokens(request),
            "new_key": new_key,
            "show_owner": is_admin(request.user),
            "crumbs": [("API tokens", None)],
        },
        status=status,
    )


@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_for(request, _tokens(request), pk=token_id)
    if not token.revoked:
        token.revoke()
        messages.success(request, f"Token {token.name} revoked: it no longer authenticates.")
    return redirect("backoffice:tokens")
