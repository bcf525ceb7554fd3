"""Server-sent event streams, served by the ASGI ``streams`` process.

An async generator holds the connection without holding a thread, which is why these views
live behind uvicorn rather than gunicorn's sync workers.

The pages are served by another process (another port of the same host), so a stream answers
cross-origin requests from the same host with CORS headers that allow credentials: the browser
then sends the session cookie (cookies are per host, not per port) and lets the page read the
stream. Under WSGI (the test client, pytest-django's live server, a same-origin fallback) a
stream would hold a worker thread, so there it is synchronous and ends after its first batch
of events (or ``WSGI_WAIT_SECONDS`` without any); the browser's EventSource reconnects at once
with ``Last-Event-ID``: a long poll, with the same protocol. The heartbeat stream sends one beat
there and ends at once, telling the browser to come back a heartbeat period later. No stream
holds a WSGI worker for longer than ``WSGI_WAIT_SECONDS``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils import timezone

from accounts.roles import is_admin
from jobs import runs
from jobs.errors import RunNotFound
from jobs.states import TERMINAL_RUN_STATES
from workers.events import stream_events
from workers.models import Level

HEARTBEAT_SECONDS = 15.0
#: The most beats a heartbeat stream may be asked for (``?limit=``).
MAX_HEARTBEATS = 1000
#: The most events a lifecycle stream may be asked for (``?limit=``).
MAX_EVENTS = 10_000
#: How often the lifecycle stream asks the database for new events.
POLL_SECONDS = 0.75
#: Under WSGI, how long a lifecycle stream waits for a first event before it ends.
WSGI_WAIT_SECONDS = 10.0
#: What an EventSource waits before it reconnects after a stream ended (milliseconds).
RETRY_MS = 1000


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


def _heartbeat_poll() -> Iterator[str]:
    """Under WSGI: one beat, then the stream ends; ``retry:`` makes the browser come back a
    heartbeat period later, so it hears one as often as under ASGI without holding a worker."""
    yield f"retry: {int(HEARTBEAT_SECONDS * 1000)}\n\n"
    yield sse_event("heartbeat", timezone.now().isoformat())


def _heartbeat_limit(raw: str | None) -> int | None:
    """``?limit=``: absent (beat until the client leaves) or 1 to ``MAX_HEARTBEATS``;
    ``ValueError`` otherwise."""
    if raw is None or raw == "":
        return None
    limit = int(raw) if raw.isdecimal() and len(raw) <= 9 else 0
    if not 1 <= limit <= MAX_HEARTBEATS:
        raise ValueError(f"limit must be a whole number from 1 to {MAX_HEARTBEATS}.")
    return limit


async def heartbeat(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """A stream that only beats: lets a client (and the tests) prove the streams path is up.

    ``?limit=`` ends it after that many beats (400 when it is not 1 to ``MAX_HEARTBEATS``).
    Under WSGI it sends one beat and ends (see the module's docstring)."""
    user = await request.auser()
    if not user.is_authenticated:
        return HttpResponse(status=401)
    try:
        limit = _heartbeat_limit(request.GET.get("limit"))
    except ValueError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain")
    response = StreamingHttpResponse(
        _heartbeats(limit) if isinstance(request, ASGIRequest) else _heartbeat_poll(),
        content_type="text/event-stream",
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


# -- cross-origin access -----------------------------------------------------------------------


def _hostname(host: str) -> str:
    """``example.com`` of ``example.com:8000``, ``::1`` of ``[::1]:8001``."""
    return (urlsplit(f"//{host}").hostname or "").lower()


def allowed_origin(request: HttpRequest) -> str | None:
    """The request's ``Origin`` when a page of ours may read this stream (with the user's
    cookies): exactly one of ``QUAYMASTER_WEB_ORIGIN`` or ``CSRF_TRUSTED_ORIGINS`` (scheme,
    host and port). Only in development without ``QUAYMASTER_WEB_ORIGIN``
    (``QUAYMASTER_STREAMS_SAME_HOST``): any http(s) page on the request's own host name, as
    ``make run`` serves web and streams on two ports of one host."""
    origin = request.headers.get("Origin")
    if not origin:
        return None
    if origin in getattr(settings, "QUAYMASTER_WEB_ORIGIN", []):
        return origin
    if origin in getattr(settings, "CSRF_TRUSTED_ORIGINS", []):
        return origin
    if not getattr(settings, "QUAYMASTER_STREAMS_SAME_HOST", False):
        return None
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if parts.hostname.lower() == _hostname(request.get_host()):
        return origin
    return None


def _cors(request: HttpRequest, response: HttpResponse | StreamingHttpResponse) -> None:
    response["Vary"] = "Origin, Cookie"
    origin = allowed_origin(request)
    if origin is not None:
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Credentials"] = "true"


# -- the lifecycle log -------------------------------------------------------------------------


def _int(value: str | None) -> int:
    """A whole number from a query parameter or header; 0 for anything else (never raises:
    ``"²"`` is a digit to ``str.isdigit`` and not a number to ``int``)."""
    value = (value or "").strip()
    return int(value) if value.isascii() and value.isdecimal() and len(value) <= 18 else 0


@dataclass
class _Cursor:
    """Where a lifecycle stream is: the last id sent, and what it still may send."""

    after: int
    queue: str | None
    handler: str | None
    level: str | None
    limit: int | None
    sent: int = 0

    @property
    def done(self) -> bool:
        return self.limit is not None and self.sent >= self.limit

    def fetch(self) -> list[str]:
        """The next batch, as SSE chunks (synchronous: the ORM)."""
        batch = stream_events(self.after, queue=self.queue, handler=self.handler, level=self.level)
        if self.limit is not None:
            batch = batch[: self.limit - self.sent]
        chunks = []
        for event in batch:
            self.after = event.pk
            self.sent += 1
            data = json.dumps(event.as_dict(), separators=(",", ":"))
            chunks.append(f"event: lifecycle\nid: {event.pk}\ndata: {data}\n\n")
        return chunks


async def _lifecycle_events(cursor: _Cursor) -> AsyncIterator[str]:
    """Under ASGI: ``retry:``, then each new event as ``event: lifecycle`` with its id, until
    the limit or the client goes away (Django cancels the response); a comment every
    ``HEARTBEAT_SECONDS`` keeps proxies from closing a quiet stream."""
    yield f"retry: {RETRY_MS}\n\n"
    fetch = sync_to_async(cursor.fetch)
    last_beat = time.monotonic()
    while not cursor.done:
        chunks = await fetch()
        for chunk in chunks:
            yield chunk
        if chunks and cursor.limit is None:
            continue  # a full batch may mean more are waiting
        if time.monotonic() - last_beat >= HEARTBEAT_SECONDS:
            last_beat = time.monotonic()
            yield ": heartbeat\n\n"
        if not cursor.done:
            await asyncio.sleep(POLL_SECONDS)


def _lifecycle_poll(cursor: _Cursor) -> Iterator[str]:
    """Under WSGI: the same, but it ends after the first batch (or ``WSGI_WAIT_SECONDS``
    without one), so it never holds a worker thread for long; the browser reconnects."""
    yield f"retry: {RETRY_MS}\n\n"
    deadline = time.monotonic() + WSGI_WAIT_SECONDS
    while not cursor.done:
        chunks = cursor.fetch()
        yield from chunks
        if chunks or time.monotonic() >= deadline:
            return
        time.sleep(POLL_SECONDS)


async def lifecycle(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """The workers' lifecycle log as server-sent events, for admins.

    ``?after=`` (an event id; ``Last-Event-ID`` wins when the browser reconnects), ``queue``,
    ``handler``, ``level`` (a minimum), ``limit`` (end after that many events, 1 to
    ``MAX_EVENTS``; 400 otherwise). It ends when
    the client disconnects (ASGI cancels the generator), or as described above under WSGI."""
    user = await request.auser()
    response: HttpResponse | StreamingHttpResponse
    if not user.is_authenticated:
        response = HttpResponse(status=401)
    elif not await sync_to_async(is_admin)(user):
        response = HttpResponse(status=403)
    elif (level := request.GET.get("level") or None) and level not in Level.values:
        response = HttpResponse(f"Unknown level {level!r}.", status=400, content_type="text/plain")
    elif (raw := request.GET.get("limit")) and not 1 <= _int(raw) <= MAX_EVENTS:
        response = HttpResponse(
            f"limit must be a whole number from 1 to {MAX_EVENTS}.",
            status=400,
            content_type="text/plain",
        )
    else:
        after = max(_int(request.GET.get("after")), _int(request.headers.get("Last-Event-ID")))
        cursor = _Cursor(
            after=after,
            queue=request.GET.get("queue") or None,
            handler=request.GET.get("handler") or None,
            level=level,
            limit=_int(request.GET.get("limit")) or None,
        )
        response = StreamingHttpResponse(
            _lifecycle_events(cursor)
            if isinstance(request, ASGIRequest)
            else _lifecycle_poll(cursor),
            content_type="text/event-stream",
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
    _cors(request, response)
    return response


# -- job progress ------------------------------------------------------------------------------

#: How often a job progress stream reads the run (it sends only what changed).
PROGRESS_SECONDS = 0.5


def _progress(run_id: str) -> dict[str, Any] | None:
    try:
        return runs.summary(runs.get_run(run_id), transitions=False)
    except RunNotFound:
        return None


def _is_over(summary: dict[str, Any]) -> bool:
    return summary["state"] in TERMINAL_RUN_STATES


async def _progress_events(run_id: str, first: dict[str, Any]) -> AsyncIterator[str]:
    """Under ASGI: the run's summary as ``event: progress`` whenever it changed, at most every
    ``PROGRESS_SECONDS``, until the run has ended (that last summary included)."""
    yield f"retry: {RETRY_MS}\n\n"
    read = sync_to_async(_progress)
    summary: dict[str, Any] | None = first
    sent: dict[str, Any] | None = None
    last_beat = time.monotonic()
    while summary is not None:
        if summary != sent:
            yield sse_event("progress", json.dumps(summary, separators=(",", ":")))
            sent = summary
            last_beat = time.monotonic()
        if _is_over(summary):
            return
        if time.monotonic() - last_beat >= HEARTBEAT_SECONDS:
            last_beat = time.monotonic()
            yield ": heartbeat\n\n"
        await asyncio.sleep(PROGRESS_SECONDS)
        summary = await read(run_id)


def _progress_poll(first: dict[str, Any]) -> Iterator[str]:
    """Under WSGI: one summary, then the stream ends (the browser reconnects)."""
    yield f"retry: {RETRY_MS}\n\n"
    yield sse_event("progress", json.dumps(first, separators=(",", ":")))


async def job_progress(request: HttpRequest, run_id: Any) -> HttpResponse | StreamingHttpResponse:
    """A job run's live progress (state, counts, percent, throughput, ETA) for admins."""
    user = await request.auser()
    response: HttpResponse | StreamingHttpResponse
    if not user.is_authenticated:
        response = HttpResponse(status=401)
    elif not await sync_to_async(is_admin)(user):
        response = HttpResponse(status=403)
    elif (first := await sync_to_async(_progress)(str(run_id))) is None:
        response = HttpResponse(status=404)
    else:
        response = StreamingHttpResponse(
            _progress_events(str(run_id), first)
            if isinstance(request, ASGIRequest)
            else _progress_poll(first),
            content_type="text/event-stream",
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
    _cors(request, response)
    return response
