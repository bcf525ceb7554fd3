"""The rule-kind registry: every kind the model allows has its behaviour, in one place."""

from __future__ import annotations

from zstorage.models import Rule, RuleKind
from zstorage.rules import rule_type, rule_types


def test_every_rule_kind_is_registered_once():
    assert [str(rule.kind) for rule in rule_types()] == list(RuleKind.values)
    for kind in RuleKind.values:
        assert rule_type(kind).kind == kind


def test_field_and_table_rules_are_told_apart():
    table_kinds = {str(rule.kind) for rule in rule_types() if not rule.on_field}
    assert table_kinds == {RuleKind.EXPRESSION, RuleKind.UNIQUE_TOGETHER}
    assert [str(rule.kind) for rule in rule_types() if rule.checks_blank] == [RuleKind.REQUIRED]


def test_only_uniqueness_rules_name_unique_keys():
    together = Rule(kind=RuleKind.UNIQUE_TOGETHER, params={"fields": ["a", "b"]})
    assert rule_type(RuleKind.UNIQUE_TOGETHER).unique_keys(together) == ["a", "b"]
    for kind in RuleKind.values:
        if kind not in (RuleKind.UNIQUE, RuleKind.UNIQUE_TOGETHER):
            assert rule_type(kind).unique_keys(Rule(kind=kind, params={"fields": ["a"]})) == []


def test_field_rules_evaluate_present_values():
    assert rule_type(RuleKind.MIN).holds("10.5", {"value": "9.5"})
    assert not rule_type(RuleKind.MAX).holds("2026-01-02", {"value": "2026-01-01"})
    assert rule_type(RuleKind.MAX_LENGTH).holds(["a", "b"], {"value": 2})
    assert not rule_type(RuleKind.REGEX).holds("abc", {"pattern": "^[0-9]+$"})
    assert rule_type(RuleKind.CHOICES).holds(["a"], {"values": ["a", "b"]})
    assert rule_type(RuleKind.REQUIRED).holds("anything", {})
