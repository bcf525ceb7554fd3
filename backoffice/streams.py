"""Server-sent event streams, served by the ASGI ``streams`` process.

An async generator holds the connection without holding a thread, which is why these views
live behind uvicorn rather than gunicorn's sync workers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils import timezone

HEARTBEAT_SECONDS = 15.0


def sse_event(event: str, data: str) -> str:
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"event: {event}\n{lines}\n"


async def _heartbeats(limit: int | None) -> AsyncIterator[str]:
    sent = 0
    while limit is None or sent < limit:
        yield sse_event("heartbeat", timezone.now().isoformat())
        sent += 1
        if limit is None or sent < limit:
            await asyncio.sleep(HEARTBEAT_SECONDS)


async def heartbeat(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """A stream that only beats: lets a client (and the tests) prove the streams path is up."""
    user = await request.auser()
    if not user.is_authenticated:
        return HttpResponse(status=401)
    limit = request.GET.get("limit")
    response = StreamingHttpResponse(
        _heartbeats(int(limit) if limit and limit.isdigit() else None),
        content_type="text/event-stream",
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
