"""Process logs: text lines (the default) or, with ``LOG_FORMAT=json``, one JSON object per line
from every process (web, streams, relay, workers, Celery), so that a log shipper can index
them and one message can be followed from its publish to its handler by its id.

Every line, from ``logging.getLogger(...)`` (all of the platform's code, Django, Celery) and
from structlog loggers alike, goes through one ``structlog.stdlib.ProcessorFormatter``. It adds
the ids bound to the current context (``structlog.contextvars``) where they apply:

* ``request_id``: the web request (``RequestIdMiddleware``; an incoming ``X-Request-ID`` that is
  a short token is kept, else one is made; the answer carries it back in the same header);
* ``token_id``: the API token that authenticated the request (``accounts.authentication``);
* ``queue``, ``message_id``, ``handler``, ``attempt``: the message a worker thread is handling
  (``workers.middleware.LogContext``); the relay binds ``queue`` while it drains one;
* ``run_id``, ``instance_id``, ``job``: the job instance a handler runs (``jobs.execution``).
* ``task``, ``task_id``: the Celery task a worker of the scheduler runs (``quaymaster.celery``).

Lines may also carry fields of their own (``extra={...}``), such as the ``message_ids`` of a
publish or of a batch the relay sent. A JSON line has ``time`` (UTC, ISO 8601), ``level``,
``logger``, ``message``, ``pid``, the bound ids and those fields, and ``exception`` (the
traceback text) when there is one. A text line is today's ``time LEVEL logger: message``
followed by the bound ids as ``key=value`` (by name).

A leaf module (the standard library, structlog, asgiref and Django's exception only): apps
import it.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import ImproperlyConfigured
from structlog.typing import EventDict, Processor, WrappedLogger

FORMATS = ("text", "json")
#: The request id travels in this header, both ways.
REQUEST_ID_HEADER = "X-Request-ID"
#: An incoming request id is kept when it is a short token of these characters (a proxy's or a
#: client's id); anything else (too long, spaces, quotes, control characters) is replaced.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:=+/-]{0,127}")
#: In text lines, the fields of a line's own (``extra``) shown after the message; the JSON
#: lines carry every field. (Django's own extras, a request object, stay out of text lines.)
TEXT_FIELDS = frozenset(
    {"queue", "message_id", "message_ids", "handler", "attempt", "outcome", "count"}
)
_META = frozenset({"_record", "_from_structlog", "event", "exception", "level", "logger"})


def _add_pid(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    event["pid"] = os.getpid()
    return event


def _first_keys(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """``time``, ``level``, ``logger`` and ``message`` first: what a person reads first (and
    without uvicorn's copy of the message in terminal colours)."""
    event.pop("color_message", None)
    head: dict[str, Any] = {
        key: event.pop(key) for key in ("time", "level", "logger", "message") if key in event
    }
    return {**head, **event}


def _text_line(_logger: WrappedLogger, _method: str, event: EventDict) -> str:
    """``time LEVEL logger: message key=value…`` (the format the platform always had)."""
    record: logging.LogRecord | None = event.get("_record")
    when = _TIME.formatTime(record) if record is not None else ""
    level = str(event.get("level", "")).upper()
    line = f"{when} {level} {event.get('logger', '')}: {event.get('event', '')}"
    fields = [f"{key}={event[key]}" for key in sorted(event) if key not in _META]
    if fields:
        line += " " + " ".join(fields)
    if event.get("exception"):
        line += "\n" + str(event["exception"])
    return line


_TIME = logging.Formatter()


def _chain(fmt: str) -> list[Processor]:
    """What every line goes through before it is rendered (stdlib lines: ``foreign_pre_chain``;
    structlog lines run the same in ``structlog.configure``)."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.ExtraAdder(None if fmt == "json" else TEXT_FIELDS),
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
    ]


def formatter(fmt: str = "text") -> logging.Formatter:
    """The formatter of every handler (``LOGGING``'s ``"()"`` factory; gunicorn's too)."""
    if fmt == "json":
        final: list[Processor] = [
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
            _add_pid,
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("message"),
            _first_keys,
            structlog.processors.JSONRenderer(default=str),
        ]
    else:
        final = [structlog.processors.format_exc_info, _text_line]
    return structlog.stdlib.ProcessorFormatter(foreign_pre_chain=_chain(fmt), processors=final)


def logging_config(fmt: str = "text", level: str = "INFO") -> dict[str, Any]:
    """Django's ``LOGGING``: one console handler on the root logger in format ``fmt``. Also
    configures structlog, whose loggers then write through the same handler."""
    if fmt not in FORMATS:
        raise ImproperlyConfigured(f"LOG_FORMAT must be 'text' or 'json', not {fmt!r}.")
    level = level.upper()
    if not isinstance(logging.getLevelName(level), int):
        raise ImproperlyConfigured(
            f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {level!r}."
        )
    _configure_structlog(fmt)
    own = {"handlers": ["console"], "level": level, "propagate": False}
    loggers: dict[str, Any] = {
        "django.db.backends": {"level": "WARNING"},
        # axes logs three INFO lines per login; its lockouts are warnings.
        "axes": {"level": "WARNING"},
    }
    logging.captureWarnings(fmt == "json")  # JSON: Python's warnings as lines too, not bare text
    if fmt == "json":
        # Django's (runserver's, and a console handler in development), gunicorn's and
        # uvicorn's loggers have handlers of their own: these replace them once Django is set
        # up in the process (gunicorn's master: platform/gunicorn.conf.py).
        loggers["django"] = {"level": level}
        for name in ("django.server", "gunicorn.error", "gunicorn.access", "uvicorn"):
            loggers[name] = own
        loggers["uvicorn.access"] = own
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"quaymaster": {"()": "quaymaster.logs.formatter", "fmt": fmt}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "quaymaster"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": loggers,
    }


def _configure_structlog(fmt: str) -> None:
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_chain(fmt),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


# -- the ids of the current context ---------------------------------------------------------


def bind(**ids: Any) -> None:
    """Add ids to every line this thread (or task) logs until ``clear``; None values are
    left out."""
    structlog.contextvars.bind_contextvars(**{k: v for k, v in ids.items() if v is not None})


def clear() -> None:
    structlog.contextvars.clear_contextvars()


#: ``with bound(queue="orders"): ...``: ids for the block, the earlier values back after it.
bound = structlog.contextvars.bound_contextvars


def request_id_of(incoming: str | None) -> str:
    """The incoming request id when it is a short token, else a new one."""
    if incoming and _SANE_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """First in ``MIDDLEWARE``: binds ``request_id`` for the request's lines and sends it back
    in ``X-Request-ID``. The ids are cleared when the next request starts and when Django
    reports the request finished (after the response is sent, so its own ``django.request``
    warning still carries them)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        from django.core.signals import request_finished

        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)
        request_finished.connect(_request_finished, dispatch_uid="quaymaster.logs")

    def __call__(self, request: Any) -> Any:
        if self.is_async:
            return self._acall(request)
        request_id = self._start(request)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response

    async def _acall(self, request: Any) -> Any:
        request_id = self._start(request)
        get_response: Callable[[Any], Awaitable[Any]] = self.get_response
        response = await get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response

    @staticmethod
    def _start(request: Any) -> str:
        request_id = request_id_of(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id
        clear()
        bind(request_id=request_id)
        return request_id


def _request_finished(**_: Any) -> None:
    clear()
