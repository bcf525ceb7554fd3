"""The base of every condition kind and the registry that finds one by its key.

A condition kind (a ``Condition`` subclass, registered with ``@register``) owns everything about
itself: its key and words (label, description), its parameters (``Param``: label, bounds,
default, help — the rule form renders them, ``clean_params`` checks them), which scope it takes
(a queue, a job, or none), whether it is offered here at all (``available``), how a rule of it
reads in a sentence (``describe``) and how it is measured (``observe``). Adding a kind is one
class in a module of this package; the form, the pages, the evaluator and the docs ask it.

``observe`` returns a ``Reading``: the subjects in breach now, each with its value and a
sentence, and the subjects it could not measure this time (an engine that did not answer):
their open alerts stay as they are instead of being resolved by an outage of the measurement.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from alerts.errors import InvalidRule, UnknownCondition
from queues.models import Queue

if TYPE_CHECKING:
    from alerts.models import AlertRule


class Scope(enum.StrEnum):
    NONE = "none"
    QUEUE = "queue"
    JOB = "job"


@dataclass(frozen=True)
class Param:
    """One number a rule of the kind takes."""

    name: str
    label: str
    default: float
    minimum: float = 0
    maximum: float = 10**9
    integer: bool = True
    help: str = ""

    def clean(self, raw: Any) -> int | float:
        """The value as stored, or ValueError saying what is wrong."""
        if raw is None or raw == "":
            return self.default
        if isinstance(raw, bool):
            raise ValueError("Enter a number.")
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ValueError("Enter a number.") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("Enter a number.")
        if self.integer and value != int(value):
            raise ValueError("Enter a whole number.")
        if not self.minimum <= value <= self.maximum:
            raise ValueError(f"Enter a number from {self.minimum:g} to {self.maximum:g}.")
        return int(value) if self.integer else value


@dataclass(frozen=True)
class Breach:
    """One subject in breach of a rule now."""

    subject: str
    label: str
    value: float | None
    summary: str


@dataclass
class Reading:
    breaches: list[Breach] = field(default_factory=list)
    #: Subjects not measured this time: their open alerts neither resolve nor change.
    unknown: set[str] = field(default_factory=set)


class Condition:
    key: ClassVar[str]
    label: ClassVar[str]
    description: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()
    scope: ClassVar[Scope] = Scope.NONE
    #: Where the kind comes in the rule form's list (lower first).
    order: ClassVar[int] = 100

    def available(self) -> bool:
        """Whether the rule form offers the kind on this deployment."""
        return True

    def clean_params(self, raw: Mapping[str, Any]) -> dict[str, int | float]:
        """The parameters as stored; InvalidRule keyed by parameter name otherwise."""
        cleaned: dict[str, int | float] = {}
        errors: dict[str, list[str]] = {}
        for param in self.params:
            try:
                cleaned[param.name] = param.clean(raw.get(param.name))
            except ValueError as exc:
                errors[param.name] = [str(exc)]
        if errors:
            raise InvalidRule(errors)
        return cleaned

    def param(self, rule: AlertRule, name: str) -> float:
        """A stored parameter, or its default (a rule saved before the parameter existed)."""
        spec = next(p for p in self.params if p.name == name)
        value = (rule.params or {}).get(name, spec.default)
        return float(value) if isinstance(value, int | float) else spec.default

    def describe(self, rule: AlertRule) -> str:
        """The rule in a sentence, e.g. "More than 5 dead letters, on queue orders"."""
        return self.label

    def observe(self, rule: AlertRule, now: datetime) -> Reading:
        raise NotImplementedError

    # -- helpers for the kinds ----------------------------------------------------------------

    @staticmethod
    def queues_of(rule: AlertRule) -> list[Queue]:
        """The rule's queue, or every enabled queue."""
        if rule.queue_id is not None:
            return list(Queue.objects.filter(pk=rule.queue_id))
        return list(Queue.objects.filter(enabled=True).order_by("name"))

    def where(self, rule: AlertRule) -> str:
        """The rule's scope in words: "on queue orders", "on any enabled queue"…"""
        if self.scope is Scope.QUEUE:
            queue = rule.queue if rule.queue_id is not None else None
            return f"on queue {queue.name}" if queue is not None else "on any enabled queue"
        if self.scope is Scope.JOB:
            return f"for job {rule.job}" if rule.job else "for any job"
        return ""


def queue_subject(queue: Queue) -> str:
    return f"queue:{queue.pk}"


_REGISTRY: dict[str, Condition] = {}


def register(cls: type[Condition]) -> type[Condition]:
    _REGISTRY[cls.key] = cls()
    return cls


def condition(key: str) -> Condition:
    try:
        return _REGISTRY[key]
    except KeyError:
        raise UnknownCondition(f"No condition kind {key!r} is registered.") from None


def conditions() -> list[Condition]:
    """Every registered kind, in the rule form's order."""
    return sorted(_REGISTRY.values(), key=lambda kind: (kind.order, kind.key))
