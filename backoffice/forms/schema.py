"""Forms for tables, fields and rules.

They only gather what a person typed into the shape ``zstorage.schema`` takes; whether a
definition is valid is for the schema service to say (``SchemaInvalid``), so the page and the
API refuse the same things with the same words. ``apply_errors`` puts the service's errors
next to the inputs they concern. Which inputs a field type's options and a rule kind's params
use is theirs to say (``FieldKind.option_inputs``, ``RuleType.inputs``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms

from zstorage.fields import InvalidValue, kind_of, registered_types, type_choices
from zstorage.models import Field, FieldType, RuleKind, Table
from zstorage.rules import rule_type, rule_types

# Where the service's error keys show in the field form ("options" concerns the type's inputs).
FIELD_OPTION_INPUTS = {
    kind.type: kind.option_inputs[0]
    for kind in map(kind_of, registered_types())
    if kind.option_inputs
}
RULE_PARAM_INPUTS = {str(rule.kind): list(rule.inputs) for rule in rule_types() if rule.inputs}
FIELD_RULE_KINDS = [str(rule.kind) for rule in rule_types() if rule.on_field]


def apply_errors(
    form: forms.Form, errors: Mapping[str, list[str]], rename: Mapping[str, str] | None = None
) -> None:
    """Attach a service's errors (keyed by model attribute) to the form's inputs."""
    rename = rename or {}
    for key, messages in errors.items():
        name = rename.get(key, key)
        target = name if name in form.fields else None
        for message in messages:
            form.add_error(target, message)


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def default_text(field: Field) -> str:
    """A field's default as the default input shows it (and ``clean_default`` reads it)."""
    return "" if field.default is None else kind_of(field.type).default_text(field.default)


class TableForm(forms.Form):
    name = forms.CharField(max_length=200)
    slug = forms.SlugField(
        max_length=63, help_text="Used in URLs and the API; lowercase letters, digits and '-'."
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    @classmethod
    def for_table(cls, table: Table, data: Any = None) -> TableForm:
        initial = {"name": table.name, "slug": table.slug, "description": table.description}
        return cls(data, initial=initial)


class FieldForm(forms.Form):
    name = forms.CharField(max_length=200)
    key = forms.CharField(
        max_length=63,
        help_text="The name in the API and in stored data: lowercase letters, digits and _.",
    )
    type = forms.ChoiceField(choices=type_choices)
    required = forms.BooleanField(required=False)
    default = forms.CharField(
        required=False,
        help_text="Filled in when a record is created without a value. JSON for JSON fields; "
        "comma-separated for multiple choice.",
    )
    help_text = forms.CharField(required=False, max_length=500, label="Help text")
    choices = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One choice per line.",
    )
    target = forms.ModelChoiceField(
        queryset=Table.objects.all(),
        required=False,
        to_field_name="slug",
        label="Referenced table",
    )
    places = forms.IntegerField(
        required=False, min_value=0, max_value=12, label="Decimal places", help_text="0 to 12."
    )

    @classmethod
    def for_field(cls, field: Field, data: Any = None) -> FieldForm:
        options = field.options or {}
        initial = {
            "name": field.name,
            "key": field.key,
            "type": field.type,
            "required": field.required,
            "default": default_text(field),
            "help_text": field.help_text,
            "choices": "\n".join(options.get("choices", [])),
            "target": options.get("table"),
            "places": options.get("places"),
        }
        return cls(data, initial=initial)

    def chosen_type(self) -> str:
        """The type to draw option inputs for: the submitted one, else the initial one."""
        value = self.data.get("type") if self.is_bound else None
        value = value or self.initial.get("type") or FieldType.TEXT
        return value if value in registered_types() else FieldType.TEXT

    def option_fields(self) -> list[forms.BoundField]:
        """The inputs of the chosen type's options."""
        return [self[name] for name in kind_of(self.chosen_type()).option_inputs]

    def clean_default(self) -> Any:
        text = self.cleaned_data.get("default", "")
        if text == "":
            return None
        field_type = self.data.get("type", "")
        if field_type not in registered_types():
            return text  # the type input says what is wrong
        try:
            return kind_of(field_type).parse_default(text)
        except InvalidValue as exc:
            raise forms.ValidationError(str(exc)) from None

    def attrs(self) -> dict[str, Any]:
        """What ``schema.add_field`` and ``schema.update_field`` take."""
        data = self.cleaned_data
        kind = data["type"]
        options: dict[str, Any] = {}
        for name in kind_of(kind).option_inputs:
            if name == "choices":
                options["choices"] = lines(data.get("choices") or "")
            elif name == "target":
                options["table"] = data["target"].slug if data.get("target") else ""
            elif name == "places" and data.get("places") is not None:
                options["places"] = data["places"]
        return {
            "name": data["name"],
            "key": data["key"],
            "type": kind,
            "required": data["required"],
            "default": data["default"],
            "help_text": data["help_text"],
            "options": options,
        }


class RuleForm(forms.Form):
    """One form for every kind of rule; the page shows only the inputs of the chosen kind."""

    kind = forms.ChoiceField(choices=RuleKind.choices)
    field = forms.ChoiceField(required=False, help_text="The field the rule checks.")
    message = forms.CharField(max_length=500, help_text="What a person sees when the rule fails.")
    value = forms.CharField(
        required=False, label="Limit", help_text="A number, or a date as YYYY-MM-DD."
    )
    length = forms.IntegerField(required=False, min_value=0, label="Length")
    pattern = forms.CharField(
        required=False, label="Pattern", help_text="A regular expression the value must match."
    )
    values = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        label="Allowed values",
        help_text="One per line.",
    )
    expression = forms.CharField(
        required=False,
        label="Expression",
        help_text="E.g. shipped_on >= ordered_on, or total > 0 and status != 'new'.",
    )
    error_field = forms.ChoiceField(
        required=False, label="Show the error on", help_text="Blank: above the form."
    )
    together = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Fields unique together",
    )

    def __init__(self, *args: Any, table: Table, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.table = table
        keys = [(f.key, f"{f.name} ({f.key})") for f in table.fields.all()]
        self.fields["field"].choices = [("", "—"), *keys]  # type: ignore[attr-defined]
        self.fields["error_field"].choices = [("", "—"), *keys]  # type: ignore[attr-defined]
        self.fields["together"].choices = keys  # type: ignore[attr-defined]

    def chosen_kind(self) -> str:
        value = (self.data.get("kind") if self.is_bound else None) or self.initial.get("kind")
        return value if value in RuleKind.values else RuleKind.REQUIRED

    def target_field(self) -> Field | None:
        key = self.cleaned_data.get("field")
        return self.table.fields.filter(key=key).first() if key else None

    def params(self) -> dict[str, Any]:
        """The kind's params as ``schema.add_rule`` takes them (it checks their meaning)."""
        data = self.cleaned_data
        return rule_type(data["kind"]).params_from(data, self._typed_values)

    def param_fields(self) -> list[forms.BoundField]:
        """The inputs of the chosen kind's params."""
        return [self[name] for name in rule_type(self.chosen_kind()).inputs]

    def _typed_values(self, values: list[str]) -> list[Any]:
        """Allowed values typed like the field's (``3`` for an integer field, not ``"3"``)."""
        field = self.target_field()
        if field is None:
            return values
        kind = kind_of(field.type)
        typed = []
        for value in values:
            try:
                typed.append(kind.coerce(value, field.options))
            except InvalidValue:
                typed.append(value)
        return typed
