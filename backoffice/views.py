"""The dashboard. Every page needs a logged-in user."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.roles import is_admin
from backoffice.dashboard import panels, storage_figures
from quaymaster.health import configured_services


@login_required
def home(request: HttpRequest) -> HttpResponse:
    admin = is_admin(request.user)
    return render(
        request,
        "backoffice/home.html",
        {
            "figures": storage_figures(request),
            "panels": panels(request),
            # Which engines are configured is deployment detail: admins only.
            "services": configured_services() if admin else None,
        },
    )
