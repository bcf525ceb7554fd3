"""The base of every rule kind and the registry that finds one by its name.

A rule kind (a ``RuleType`` subclass, registered with ``@register``) owns what differs between
kinds: whether it applies to a field or to the table, how its params are checked when the rule
is saved (``check_params``), how it is evaluated on a record (``holds`` for a field's value,
``table_holds`` for the whole record), the field keys it keeps unique (``unique_keys``, which
get a unique index), what a schema change does to it (``field_renamed``, ``field_deleted``),
and which inputs of the rule form carry its params (``inputs``, ``params_from``). A rule's
message is its own (``Rule.message``), shown wherever it fails.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from zstorage.models import Field, Rule, RuleKind


class InvalidParams(ValueError):
    """A rule definition that does not hold; ``key`` is the attribute it concerns."""

    def __init__(self, message: str, key: str = "params") -> None:
        super().__init__(message)
        self.key = key


class RuleType:
    kind: ClassVar[RuleKind]
    #: Applies to one field (named by ``Rule.field``), or to the table.
    on_field: ClassVar[bool] = True
    #: Decides a blank value (the required rule); the others see only present values.
    checks_blank: ClassVar[bool] = False
    #: The rule form's inputs that carry the params.
    inputs: ClassVar[tuple[str, ...]] = ()
    #: Asked first about schema changes (lower first), so refusals keep one order.
    order: ClassVar[int] = 100

    def check_params(
        self, field: Field | None, params: dict[str, Any], keys: set[str]
    ) -> dict[str, Any]:
        """The params as stored, or InvalidParams. ``keys`` are the table's field keys."""
        return params

    def holds(self, value: Any, params: Mapping[str, Any]) -> bool:
        """Whether a field's present, canonical value passes."""
        return True

    def prepare(self, rule: Rule, keys: set[str]) -> Any:
        """What ``table_holds`` needs, computed once per loaded schema."""
        return None

    def table_holds(self, rule: Rule, prepared: Any, data: Mapping[str, Any]) -> bool:
        return True

    def error_key(self, rule: Rule) -> str | None:
        """The field a failing table rule shows its message on (None: the whole record)."""
        return None

    def unique_keys(self, rule: Rule) -> list[str]:
        """The field keys whose values the rule keeps unique together (none: not unique)."""
        return []

    def field_retyped(self, rule: Rule, field: Field) -> None:
        """Raise SchemaChangeRefused when the rule no longer suits its field's new type."""

    def field_renamed(self, rule: Rule, old: str, new: str, keys: set[str]) -> dict[str, Any]:
        """The params after a field is renamed; raise SchemaChangeRefused to refuse."""
        return rule.params

    def field_deleted(self, rule: Rule, key: str, keys: set[str]) -> None:
        """Raise SchemaChangeRefused when the rule still needs the field ``key``."""

    def params_from(
        self, data: Mapping[str, Any], typed: Callable[[list[str]], list[Any]]
    ) -> dict[str, Any]:
        """The params from the rule form's cleaned ``data``; ``typed`` types a list of texts
        like the rule's field."""
        return {}


_REGISTRY: dict[str, RuleType] = {}


def register(cls: type[RuleType]) -> type[RuleType]:
    _REGISTRY[str(cls.kind)] = cls()
    return cls


def rule_type(kind: str) -> RuleType:
    """The kind's behaviour; a kind the model refuses never reaches here (KeyError)."""
    return _REGISTRY[kind]


def rule_types() -> list[RuleType]:
    return [_REGISTRY[kind] for kind in RuleKind.values if kind in _REGISTRY]
