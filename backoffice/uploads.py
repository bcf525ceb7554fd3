"""Refusing an oversized upload before its body is read.

Django reads a multipart body the first time anything asks for ``request.POST``; the CSRF check
is the first to ask, and it spools every uploaded file over 2.5 MB to a temporary file on disk.
A page's own size check comes too late: the disk and the time are spent. So this middleware,
placed before ``CsrfViewMiddleware``, looks at the ``Content-Length`` header of a POST to a
page that takes an upload and answers 413 when the body is over that page's cap, having read
nothing. (A body without ``Content-Length`` is read as empty by Django, so it cannot be large.)

The cap on the body is the page's file cap plus ``MULTIPART_ALLOWANCE`` for the parts around
the file (boundaries, part headers, the CSRF token): a file just under the cap passes here and
meets the page's own check of the file's size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from backoffice.pages import transfer

#: Bytes a multipart body holds beyond its file: far more than the boundaries and the few small
#: fields a page's form sends.
MULTIPART_ALLOWANCE = 64 * 1024

#: The pages that take an upload (URL name), with their file cap and their answer to a larger
#: one, which gets the request and the URL's arguments.
UPLOAD_PAGES: dict[str, tuple[Callable[[], int], Callable[..., HttpResponse]]] = {
    "backoffice:import": (transfer.max_bytes, transfer.upload_too_large),
}


def content_length(request: HttpRequest) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0  # as Django reads it: no body


class UploadSizeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> HttpResponseBase | None:
        if request.method != "POST" or request.resolver_match is None:
            return None
        page = UPLOAD_PAGES.get(request.resolver_match.view_name)
        if page is None:
            return None
        max_file, too_large = page
        if content_length(request) <= max_file() + MULTIPART_ALLOWANCE:
            return None
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())  # as the page's login_required
        return too_large(request, *args, **kwargs)
