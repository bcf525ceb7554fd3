"""What the dashboard shows, and the hook other apps use to add their own panels.

Queues and workers add panels (queue depth, workers alive) by registering a function here
rather than by editing the dashboard: each panel is a template plus the context it needs,
and a panel that has nothing to say for this user returns None and is left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest

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
