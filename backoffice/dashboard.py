"""What the dashboard shows, and the hook other apps use to add their own panels.

Queues and workers add panels (queue depth, workers alive) by registering a function here
rather than by editing the dashboard: each panel is a template plus the context it needs,
and a panel that has nothing to say for this user returns None and is left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from accounts.roles import is_admin
from queues.backends import backend_class
from queues.models import QueueType
from zstorage.models import Record, RecordChange
from zstorage.permissions import visible_tables

RECENT_CHANGES = 10


@dataclass(frozen=True)
class Panel:
    """One dashboard section: ``template`` is rendered with ``context`` (plus the request)."""

    title: str
    template: str
    context: dict[str, Any] = field(default_factory=dict)


PanelFunction = Callable[[HttpRequest], Panel | None]
_PANELS: list[PanelFunction] = []


def register_panel(function: PanelFunction) -> PanelFunction:
    """Add a panel to the dashboard, shown after the storage figures in registration order.

    Usable as a decorator, e.g. from ``queues/apps.py`` ``ready()``::

        @register_panel
        def queue_stats(request): return Panel("Queues", "queues/_dashboard.html", {...})
    """
    if function not in _PANELS:
        _PANELS.append(function)
    return function


def panels(request: HttpRequest) -> list[Panel]:
    return [panel for function in _PANELS if (panel := function(request)) is not None]


@dataclass(frozen=True)
class StorageFigures:
    tables: int
    records: int
    recent_changes: list[RecordChange]


def storage_figures(request: HttpRequest) -> StorageFigures:
    """Counts and the latest writes, limited to the tables this user may see."""
    tables = visible_tables(request.user)
    changes = (
        RecordChange.objects.filter(table__in=tables)
        .select_related("table", "actor")
        .order_by("-at", "-id")[:RECENT_CHANGES]
    )
    return StorageFigures(
        tables=tables.count(),
        records=Record.objects.filter(table__in=tables).count(),
        recent_changes=list(changes),
    )


@dataclass(frozen=True)
class EngineState:
    """One queue engine as the dashboard says it: its name, whether this deployment has it
    set up, and what that means for a queue of its type."""

    label: str
    ready: bool
    text: str


def engine_states() -> list[EngineState]:
    """Each queue type's engine, from its backend: whether it connects elsewhere (its url
    setting) and whether a queue can do without a URL of its own (``url_required``)."""
    states = []
    for queue_type in QueueType:
        engine = backend_class(queue_type.value)
        setting = engine.url_setting
        if not setting:
            text, ready = "built in: its messages are rows of this deployment's database", True
        elif getattr(settings, setting, ""):
            text, ready = f"set up: a queue without a URL of its own uses {setting}", True
        elif engine.url_required:
            text, ready = f"not set up ({setting} is empty): each queue needs its own URL", False
        else:
            text = f"not set up ({setting} is empty): a queue without a URL of its own uses AWS"
            ready = False
        states.append(EngineState(queue_type.label, ready, text))
    return states


@register_panel
def engines_panel(request: HttpRequest) -> Panel | None:
    """Which queue engines this deployment is set up for: deployment detail, for admins."""
    if not is_admin(request.user):
        return None
    return Panel("Engines configured", "backoffice/_engines.html", {"engines": engine_states()})
