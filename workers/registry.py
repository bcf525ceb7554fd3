"""Handlers by name: ``@handler("send_email")`` registers a function ``(message, ctx)``;
``@handler("sync_orders", batch=100, max_wait=0.5)`` a batch handler ``(messages, ctx)`` that
gets up to ``batch`` messages at once (see ``workers.batching``).

A message names the handler it wants (``{"handler": "send_email", ...}``); a worker looks the
name up here. Handler modules are found at start-up, as Django finds ``admin.py``: the
``handlers`` module of every installed app, then each module listed in the
``QUAYMASTER_HANDLER_MODULES`` setting (and any given on the command line).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from django.conf import settings
from django.utils.module_loading import autodiscover_modules

from workers.errors import HandlerAlreadyRegistered, HandlerNotFound

HandlerFunction = Callable[[Any, Any], Any]

#: Python modules imported by ``discover`` besides every installed app's ``handlers``.
SETTING = "QUAYMASTER_HANDLER_MODULES"

#: The largest ``batch``: every message of a batch is held (leased, unacknowledged) by one
#: worker until the handler returns, and RabbitMQ's prefetch must cover it; past a thousand a
#: handler is better served by a job over a table.
MAX_BATCH = 1000
#: The longest ``max_wait``, in seconds: the first message of a batch waits that long at most
#: before its handler even starts.
MAX_WAIT = 60.0
DEFAULT_MAX_WAIT = 1.0


@dataclass(frozen=True)
class Handler:
    name: str
    fn: HandlerFunction
    #: Batch handlers: at most this many messages per call (None: one message per call).
    batch: int | None = None
    #: Batch handlers: seconds a batch is gathered, from its first message, before it runs
    #: with what it has.
    max_wait: float = DEFAULT_MAX_WAIT

    #: Templates show a handler; they must not call it.
    do_not_call_in_templates = True

    @property
    def path(self) -> str:
        return f"{self.fn.__module__}.{self.fn.__qualname__}"

    @property
    def description(self) -> str:
        """The function's docstring (what the Handlers page shows)."""
        return inspect.getdoc(self.fn) or ""

    @property
    def summary(self) -> str:
        return self.description.split("\n\n", 1)[0].replace("\n", " ")

    @property
    def label(self) -> str:
        """The name and, for a batch handler, its settings (the worker's start-up line)."""
        if self.batch is None:
            return self.name
        return f"{self.name} (batch {self.batch}, max_wait {self.max_wait:g}s)"

    def __call__(self, message: Any, ctx: Any) -> Any:
        """A single handler's ``(message, ctx)``, a batch handler's ``(messages, ctx)``."""
        return self.fn(message, ctx)


def check_batch(batch: object, max_wait: object) -> tuple[int | None, float]:
    """The batch settings as given to ``@handler``, or ValueError saying what is wrong."""
    if batch is None:
        if max_wait is not None:
            raise ValueError("max_wait applies to batch handlers only: give batch=… as well.")
        return None, DEFAULT_MAX_WAIT
    if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= MAX_BATCH:
        raise ValueError(f"batch must be a whole number from 1 to {MAX_BATCH}, not {batch!r}.")
    if max_wait is None:
        return batch, DEFAULT_MAX_WAIT
    if (
        isinstance(max_wait, bool)
        or not isinstance(max_wait, int | float)
        or not 0 < max_wait <= MAX_WAIT
    ):
        raise ValueError(
            f"max_wait must be a number of seconds above 0 and at most {MAX_WAIT:g}, "
            f"not {max_wait!r}."
        )
    return batch, float(max_wait)


class Registry:
    """Names to handlers. Thread-safe; one per process (``registry``), or one per test."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        self._lock = threading.Lock()
        #: Batch handlers' names and sizes (replaced whole on each ``add``: read lock-free).
        self._batch_sizes: dict[str, int] = {}

    def handler(
        self, name: str, *, batch: int | None = None, max_wait: float | None = None
    ) -> Callable[[HandlerFunction], HandlerFunction]:
        """Decorator: register the function under ``name`` and return it unchanged. With
        ``batch``, it is a batch handler: ``fn(messages, ctx)`` with up to ``batch`` messages,
        called once ``batch`` are there or ``max_wait`` seconds after the first."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError("A handler name is a non-empty string.")
        size, wait = check_batch(batch, max_wait)

        def register(fn: HandlerFunction) -> HandlerFunction:
            self.add(Handler(name, fn, size, wait))
            return fn

        return register

    def add(self, handler: Handler) -> None:
        with self._lock:
            known = self._handlers.get(handler.name)
            # The same function registered again (a module imported twice) is not a clash.
            if known is not None and known.path != handler.path:
                raise HandlerAlreadyRegistered(
                    f"Handler {handler.name!r} is registered by {known.path}; "
                    f"{handler.path} cannot take the name too."
                )
            if known is not None and (known.batch, known.max_wait) != (
                handler.batch,
                handler.max_wait,
            ):
                raise HandlerAlreadyRegistered(
                    f"Handler {handler.name!r} ({known.path}) is registered already as "
                    f"{known.label!r}; it cannot be registered again as {handler.label!r}."
                )
            self._handlers[handler.name] = handler
            self._batch_sizes = {
                h.name: h.batch for h in self._handlers.values() if h.batch is not None
            }

    def get(self, name: str) -> Handler:
        try:
            return self._handlers[name]
        except KeyError:
            raise HandlerNotFound(name) from None

    def find(self, name: str) -> Handler | None:
        return self._handlers.get(name)

    def names(self) -> list[str]:
        return sorted(self._handlers)

    def labels(self) -> list[str]:
        """Every handler by name, batch handlers with their settings."""
        return [self._handlers[name].label for name in self.names()]

    @property
    def batch_sizes(self) -> dict[str, int]:
        """The batch handlers' sizes by name (empty: the worker never gathers batches)."""
        return self._batch_sizes

    def __contains__(self, name: object) -> bool:
        return name in self._handlers


#: The process's registry, filled by ``@handler`` at import time.
registry = Registry()
handler = registry.handler


def handler_modules(extra: Iterable[str] = ()) -> list[str]:
    """The modules ``discover`` imports besides the apps' ``handlers`` modules."""
    configured = getattr(settings, SETTING, [])
    if isinstance(configured, str):
        configured = [m for m in configured.split(",") if m.strip()]
    return [m.strip() for m in [*configured, *extra]]


def discover(extra: Iterable[str] = ()) -> Registry:
    """Import every installed app's ``handlers`` module, then the configured modules. An
    import error is not swallowed: a worker that cannot load its handlers must not start."""
    autodiscover_modules("handlers")
    for module in handler_modules(extra):
        import_module(module)
    return registry


_discovered = False


def registered_names() -> Registry:
    """The process's registry once every handler module is loaded (loaded at the first call;
    a module that fails to import is the workers' to report: this asks again next time)."""
    global _discovered
    if not _discovered:
        discover()
        _discovered = True
    return registry
