"""Jobs by name: ``@job("process_batch")`` registers a function ``run(params, ctx) -> result``.

A run executes one job over a list of parameter objects; each instance calls the function
once with its own parameters and a ``JobContext`` (the handler context plus ``progress``,
``run_id``, ``instance_id`` and ``params``). The result must be JSON-serialisable.

Job modules are found as handler modules are: the ``jobs`` module of every installed app,
then each module in the ``QUAYMASTER_JOB_MODULES`` setting. Discovery happens once per
process, on first use, so the web process can refuse an unknown job when a run is started.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils.module_loading import autodiscover_modules

from jobs.errors import JobAlreadyRegistered, UnknownJob

if TYPE_CHECKING:
    from jobs.context import JobContext

JobFunction = Callable[[dict[str, Any], "JobContext"], Any]

SETTING = "QUAYMASTER_JOB_MODULES"


@dataclass(frozen=True)
class JobDefinition:
    name: str
    fn: JobFunction

    #: Templates show a definition; they must not call it.
    do_not_call_in_templates = True

    @property
    def path(self) -> str:
        return f"{self.fn.__module__}.{self.fn.__qualname__}"

    @property
    def description(self) -> str:
        return inspect.getdoc(self.fn) or ""

    @property
    def summary(self) -> str:
        return self.description.split("\n\n", 1)[0].replace("\n", " ")

    def __call__(self, params: dict[str, Any], ctx: JobContext) -> Any:
        return self.fn(params, ctx)


class JobRegistry:
    """Names to jobs. Thread-safe; one per process (``registry``), or one per test."""

    def __init__(self, *, discover: bool = True) -> None:
        self._jobs: dict[str, JobDefinition] = {}
        self._lock = threading.RLock()
        self._discovered = not discover

    def job(self, name: str) -> Callable[[JobFunction], JobFunction]:
        """Decorator: register the function under ``name`` and return it unchanged."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError("A job name is a non-empty string.")

        def register(fn: JobFunction) -> JobFunction:
            self.add(JobDefinition(name, fn))
            return fn

        return register

    def add(self, definition: JobDefinition) -> None:
        with self._lock:
            known = self._jobs.get(definition.name)
            if known is not None and known.path != definition.path:
                raise JobAlreadyRegistered(
                    f"Job {definition.name!r} is registered by {known.path}; "
                    f"{definition.path} cannot take the name too."
                )
            self._jobs[definition.name] = definition

    def get(self, name: str) -> JobDefinition:
        self.discover()
        try:
            return self._jobs[name]
        except KeyError:
            raise UnknownJob(f"No job is registered as {name!r}.") from None

    def all(self) -> list[JobDefinition]:
        self.discover()
        return [self._jobs[name] for name in sorted(self._jobs)]

    def __contains__(self, name: object) -> bool:
        self.discover()
        return name in self._jobs

    def discover(self, extra: Iterable[str] = ()) -> None:
        """Import every installed app's ``jobs`` module and the configured modules, once.
        An import error is not swallowed: a process that cannot load its jobs must say so."""
        with self._lock:
            if self._discovered and not extra:
                return
            self._discovered = True
            autodiscover_modules("jobs")
            for module in job_modules(extra):
                import_module(module)


def job_modules(extra: Iterable[str] = ()) -> list[str]:
    configured = getattr(settings, SETTING, [])
    if isinstance(configured, str):
        configured = [m for m in configured.split(",") if m.strip()]
    return [m.strip() for m in [*configured, *extra]]


#: The process's registry, filled by ``@job`` at import time.
registry = JobRegistry()
job = registry.job
