"""Choice field types: one choice (a string) or several (a list, kept in the choices' order).
The choices are the field's ``options["choices"]``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zstorage.fields.base import (
    COMPARE,
    SUBSTRING,
    Domain,
    FieldKind,
    FilterSpec,
    InvalidValue,
    register,
)
from zstorage.models import FieldType


def choices_of(options: Mapping[str, Any]) -> list[str]:
    choices = options.get("choices")
    if not isinstance(choices, list) or not choices or not all(isinstance(c, str) for c in choices):
        raise InvalidValue("List the choices as a non-empty list of texts.")
    if len(set(choices)) != len(choices):
        raise InvalidValue("Each choice may appear once.")
    return choices


class ChoiceLike(FieldKind):
    has_length = True
    widget = "select"
    option_inputs = ("choices",)

    def check_options(self, options: dict[str, Any]) -> None:
        choices_of(options)

    def input_choices(self, options: Mapping[str, Any]) -> list[tuple[str, str]]:
        return [(c, c) for c in options.get("choices", [])]


@register
class ChoiceKind(ChoiceLike):
    type = FieldType.CHOICE
    label = FieldType.CHOICE.label
    order = 100
    operators = COMPARE | SUBSTRING
    searchable = True
    labels_records = True
    filter = FilterSpec("choice", "select", "$eq")

    def coerce(self, value: Any, options: dict[str, Any]) -> str:
        choices = choices_of(options)
        if not isinstance(value, str) or value not in choices:
            raise InvalidValue(f"Choose one of: {', '.join(choices)}.")
        return value


@register
class MultiChoiceKind(ChoiceLike):
    type = FieldType.MULTI_CHOICE
    label = FieldType.MULTI_CHOICE.label
    order = 110
    domain = Domain.SET
    operators = frozenset({"$eq", "$ne", "$contains"})
    widget = "checkboxes"
    filter = FilterSpec("choice", "select", "$contains")

    def coerce(self, value: Any, options: dict[str, Any]) -> list[str]:
        choices = choices_of(options)
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidValue("Enter a list of choices.")
        unknown = [v for v in value if v not in choices]
        if unknown:
            raise InvalidValue(
                f"Not a choice: {', '.join(unknown)}. Choose from: {', '.join(choices)}."
            )
        chosen = set(value)
        return [c for c in choices if c in chosen]

    def convert(self, value: Any, options: dict[str, Any]) -> list[str]:
        return self.coerce(value if isinstance(value, list) else str(value), options)

    def display(self, value: Any) -> str:
        return ", ".join(value or [])

    def input_value(self, value: Any) -> Any:
        return list(value or [])

    def submitted(self, post: Any, name: str) -> Any:
        return post.getlist(name)

    def from_input(self, value: Any) -> Any:
        return value if value not in ([], None) else None

    def csv_format(self, value: Any) -> str:
        return "" if value is None else ", ".join(value)
