"""The rule-kind registry (see ``base.py`` for what a kind owns): field rules in
``field_rules.py``, table rules in ``table_rules.py``."""

from __future__ import annotations

from zstorage.rules import field_rules, table_rules
from zstorage.rules.base import InvalidParams, RuleType, register, rule_type, rule_types

__all__ = [
    "InvalidParams",
    "RuleType",
    "field_rules",
    "register",
    "rule_type",
    "rule_types",
    "table_rules",
]
