"""Handlers by name: ``@handler("send_email")`` registers a function ``(message, ctx)``.

A message names the handler it wants (``{"handler": "send_email", ...}``); a worker looks the
name up here. Handler modules are found at start-up, as Django finds ``admin.py``: the
``handlers`` module of every installed app, then each module listed in the
``QUAYMASTER_HANDLER_MODULES`` setting (and any given on the command line).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils.module_loading import autodiscover_modules

from workers.errors import HandlerAlreadyRegistered, HandlerNotFound

if TYPE_CHECKING:
    from workers.context import Context

HandlerFunction = Callable[[dict[str, Any], "Context"], Any]

#: Python modules imported by ``discover`` besides every installed app's ``handlers``.
SETTING = "QUAYMASTER_HANDLER_MODULES"


@dataclass(frozen=True)
class Handler:
    name: str
    fn: HandlerFunction

    @property
    def path(self) -> str:
        return f"{self.fn.__module__}.{self.fn.__qualname__}"

    def __call__(self, message: dict[str, Any], ctx: Context) -> Any:
        return self.fn(message, ctx)


class Registry:
    """Names to handlers. Thread-safe; one per process (``registry``), or one per test."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        self._lock = threading.Lock()

    def handler(self, name: str) -> Callable[[HandlerFunction], HandlerFunction]:
        """Decorator: register the function under ``name`` and return it unchanged."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError("A handler name is a non-empty string.")

        def register(fn: HandlerFunction) -> HandlerFunction:
            self.add(Handler(name, fn))
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
            self._handlers[handler.name] = handler

    def get(self, name: str) -> Handler:
        try:
            return self._handlers[name]
        except KeyError:
            raise HandlerNotFound(name) from None

    def names(self) -> list[str]:
        return sorted(self._handlers)

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
