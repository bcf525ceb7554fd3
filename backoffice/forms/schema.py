"""Forms for tables, fields and rules.

They gather what a person typed into the shape ``zstorage.schema`` takes, and the schema
service has the last word on whether a definition is valid (``SchemaInvalid``): ``apply_errors``
puts its errors next to the inputs they concern. So that a person sees every problem at once
rather than one per try, the forms first ask what the service would (the field type's
``check_options``, the rule kind's ``check_params``, the key's validator, the slug's
uniqueness) and say it in the form's words: an input's label rather than the API's
``params.value``. Which inputs a field type's options and a rule kind's params use is theirs
to say (``FieldKind.option_inputs``, ``RuleType.inputs``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms
from django.core.validators import validate_slug

from backoffice.forms.errors import ErrorSummary, form_words
from zstorage.fields import InvalidValue, kind_of, registered_types, type_choices
from zstorage.models import KEY_VALIDATOR, Field, FieldType, RuleKind, Table
from zstorage.rules import InvalidParams, rule_type, rule_types

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
    """Attach a service's errors (keyed by model attribute) to the form's inputs, in the
    form's words (``form_words``)."""
    rename = rename or {}
    for key, messages in errors.items():
        name = rename.get(key, key)
        target = name if name in form.fields else None
        for message in messages:
            form.add_error(target, form_words(message))


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def default_text(field: Field) -> str:
    """A field's default as the default input shows it (and ``clean_default`` reads it)."""
    return "" if field.default is None else kind_of(field.type).default_text(field.default)


#: What a table's slug may hold: Django's slug, as the model and the URLs take it.
SLUG_RULE = "letters, digits, '-' and '_', with no spaces (e.g. sales-orders)"


class TableForm(ErrorSummary):
    name = forms.CharField(max_length=200)
    slug = forms.CharField(
        max_length=63,
        validators=[validate_slug],
        error_messages={"invalid": f"Use only {SLUG_RULE}."},
        help_text=f"Used in URLs and the API: {SLUG_RULE}.",
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    display_field = forms.ChoiceField(
        required=False,
        label="Display field",
        help_text="The field whose value names a record where others point at it "
        "(“#31 Ada Lovelace”), in lists, history and exports.",
    )

    def __init__(self, *args: Any, table: Table | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.table = table
        if table is None:  # a new table's slug follows its name until it is typed (forms.js)
            self.fields["slug"].widget.attrs.update({"data-fill-from": "id_name"})
            del self.fields["display_field"]  # a new table has no fields yet
            return
        namable = [
            f for f in table.fields.order_by("order", "id") if kind_of(f.type).labels_records
        ]
        choice = self.fields["display_field"]
        assert isinstance(choice, forms.ChoiceField)
        choice.choices = [("", "The first text field with a value")] + [
            (f.key, f.name) for f in namable
        ]

    @classmethod
    def for_table(cls, table: Table, data: Any = None) -> TableForm:
        initial = {
            "name": table.name,
            "slug": table.slug,
            "description": table.description,
            "display_field": table.display_field or "",
        }
        return cls(data, initial=initial, table=table)

    def clean_display_field(self) -> str | None:
        return self.cleaned_data.get("display_field") or None

    def clean_slug(self) -> str:
        slug: str = self.cleaned_data["slug"]
        others = Table.objects.filter(slug=slug)
        if self.table is not None:
            others = others.exclude(pk=self.table.pk)
        if others.exists():
            raise forms.ValidationError(f"Another table has the slug “{slug}”: choose another.")
        return slug


class FieldForm(ErrorSummary):
    name = forms.CharField(max_length=200)
    key = forms.CharField(
        max_length=63,
        validators=[KEY_VALIDATOR],
        help_text="The name in the API and in stored data: lowercase letters, digits and '_', "
        "starting with a letter (e.g. shipped_on).",
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

    def __init__(
        self, *args: Any, table: Table | None = None, field: Field | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.table = table
        self.field = field
        if field is None:  # a new field's key follows its name until it is typed (forms.js)
            self.fields["key"].widget.attrs.update(
                {"data-fill-from": "id_name", "data-fill-as": "key"}
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
        return cls(data, initial=initial, table=field.table, field=field)

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

    def clean_key(self) -> str:
        key: str = self.cleaned_data["key"]
        if self.table is not None:
            others = self.table.fields.filter(key=key)
            if self.field is not None:
                others = others.exclude(pk=self.field.pk)
            if others.exists():
                raise forms.ValidationError(f"This table already has a field with the key {key}.")
        return key

    def clean(self) -> dict[str, Any]:
        """The chosen type's options, checked as the schema service will check them."""
        data = super().clean() or {}
        kind = data.get("type")
        if kind not in registered_types():
            return data
        inputs = kind_of(kind).option_inputs
        if "choices" in inputs and not lines(data.get("choices") or ""):
            self.add_error("choices", "Give at least one choice, one per line.")
        elif "target" in inputs and not data.get("target") and "target" not in self.errors:
            self.add_error("target", "Choose the table this field refers to.")
        elif inputs and not any(name in self.errors for name in inputs):
            try:
                kind_of(kind).check_options(self._options(data))
            except InvalidValue as exc:
                self.add_error(inputs[0], str(exc))
        return data

    def _options(self, data: Mapping[str, Any]) -> dict[str, Any]:
        options: dict[str, Any] = {}
        for name in kind_of(data["type"]).option_inputs:
            if name == "choices":
                options["choices"] = lines(data.get("choices") or "")
            elif name == "target":
                options["table"] = data["target"].slug if data.get("target") else ""
            elif name == "places" and data.get("places") is not None:
                options["places"] = data["places"]
        return options

    def attrs(self) -> dict[str, Any]:
        """What ``schema.add_field`` and ``schema.update_field`` take."""
        data = self.cleaned_data
        return {
            "name": data["name"],
            "key": data["key"],
            "type": data["type"],
            "required": data["required"],
            "default": data["default"],
            "help_text": data["help_text"],
            "options": self._options(data),
        }


#: What the rule form says when a kind's input is left blank.
BLANK_PARAM = {
    "value": "Give the limit: a number, or a date as YYYY-MM-DD.",
    "length": "Give the length as a whole number (0 or more).",
    "pattern": "Give the pattern the values must match.",
    "values": "Give the allowed values, one per line.",
    "expression": "Give the expression records must satisfy.",
}


class RuleForm(ErrorSummary):
    """One form for every kind of rule; the page shows only the inputs of the chosen kind."""

    kind = forms.ChoiceField(choices=RuleKind.choices)
    message = forms.CharField(
        max_length=500,
        help_text="What a person sees when the rule fails.",
        error_messages={"required": "Give the message a person sees when the rule fails."},
    )
    field = forms.ChoiceField(required=False, help_text="The field the rule checks.")
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

    def clean(self) -> dict[str, Any]:
        """Every problem of the chosen kind's inputs at once, as ``schema.add_rule`` would
        find them one by one."""
        data = super().clean() or {}
        kind = data.get("kind")
        if kind not in RuleKind.values:
            return data
        behaviour = rule_type(kind)
        field = self.target_field()
        if behaviour.on_field and field is None and "field" not in self.errors:
            self.add_error("field", "Choose the field this rule checks.")
        if field is not None and "length" in behaviour.inputs:
            kind_of_field = kind_of(field.type)
            if not kind_of_field.has_length:
                self.add_error(
                    "field",
                    f"{field.name} holds {kind_of_field.label.lower()} values, "
                    "which have no length.",
                )
        for name in behaviour.inputs:
            if name in self.errors:
                continue
            value = data.get(name)
            blank = value in (None, "") or (name == "values" and not lines(value or ""))
            if name in BLANK_PARAM and blank:
                self.add_error(name, BLANK_PARAM[name])
            elif name == "together" and len(value or []) < 2:
                self.add_error(name, "Tick two or more fields.")
        checked = (*behaviour.inputs, "field")
        ready = field is not None or not behaviour.on_field
        if behaviour.inputs and ready and not any(name in self.errors for name in checked):
            keys = {f.key for f in self.table.fields.all()}
            try:
                behaviour.check_params(field, self.params(), keys)
            except InvalidParams as exc:
                name = exc.key if exc.key in self.fields else behaviour.inputs[0]
                self.add_error(name, str(exc))
        return data

    def target_field(self) -> Field | None:
        """The chosen field, for a kind of rule that applies to one (a table rule has none,
        whatever the field input still holds)."""
        kind = self.cleaned_data.get("kind")
        if kind not in RuleKind.values or not rule_type(kind).on_field:
            return None
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
