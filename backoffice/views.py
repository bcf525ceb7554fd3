"""The dashboard. Every page needs a logged-in user."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from backoffice.dashboard import panels, storage_figures


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "backoffice/home.html",
        {
            "figures": storage_figures(request),
            "panels": panels(request),
        },
    )
