"""The condition kinds an alert rule can name: a registry (``base``), one module per family.

Adding a kind is one ``Condition`` subclass with ``@register`` in a module imported here.
"""

from __future__ import annotations

from alerts.conditions import jobs, outbox, queues, workers
from alerts.conditions.base import (
    Breach,
    Condition,
    Param,
    Reading,
    Scope,
    condition,
    conditions,
    register,
)

__all__ = [
    "Breach",
    "Condition",
    "Param",
    "Reading",
    "Scope",
    "condition",
    "conditions",
    "jobs",
    "outbox",
    "queues",
    "register",
    "workers",
]
