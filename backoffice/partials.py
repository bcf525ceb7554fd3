"""Which part of a page a request asked for: the back-office's one htmx helper.

Pages render the same view for a full load and for htmx, which swaps in a part only; django-
htmx's middleware reads the ``HX-*`` headers into ``request.htmx``, and this is the only place
that looks at it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest

if TYPE_CHECKING:
    from django_htmx.middleware import HtmxDetails


def partial_for(request: HttpRequest, target: str | None = None) -> bool:
    """Whether htmx asked for a part of the page: the element with id ``target``, or (without
    ``target``) whichever part its request swaps.

    A history-restore request (back button after a cache miss) needs the whole page."""
    htmx: HtmxDetails = request.htmx  # type: ignore[attr-defined]
    if not htmx or htmx.history_restore_request:
        return False
    return target is None or htmx.target == target
