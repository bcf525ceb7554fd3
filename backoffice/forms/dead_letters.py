"""Forms to change dead letters before they go back: one letter's whole body (its handler
included), or the handler of many at once. Both only gather what was typed; the handler's
allow-list and the engine's answer are ``queues.dead_letters``' call."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from backoffice.forms.queues import JsonObjectField

HANDLER_HELP = "The handler a worker runs for it."


class EditDeadLetterForm(forms.Form):
    handler = forms.CharField(
        max_length=200,
        help_text=HANDLER_HELP,
        widget=forms.TextInput(attrs={"list": "known-handlers", "autocomplete": "off"}),
    )
    body = JsonObjectField(
        required=False,
        label="Body (JSON object)",
        widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false", "class": "code"}),
        help_text='The message as it goes back; its "handler" is the one above.',
    )

    @classmethod
    def for_body(cls, body: bytes) -> EditDeadLetterForm:
        try:
            parsed: Any = json.loads(body)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            return cls(initial={"handler": "", "body": body.decode(errors="replace")})
        handler = parsed.pop("handler", "")
        return cls(initial={"handler": handler if isinstance(handler, str) else "", "body": parsed})

    def message(self) -> dict[str, Any]:
        return {**self.cleaned_data["body"], "handler": self.cleaned_data["handler"].strip()}


class HandlerForManyForm(forms.Form):
    handler = forms.CharField(
        max_length=200, label="Handler for the ticked ones", help_text=HANDLER_HELP
    )
    key = forms.MultipleChoiceField(required=False)  # filled from the request

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        keys = self.data.getlist("key") if hasattr(self.data, "getlist") else []
        field = self.fields["key"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [(k, k) for k in keys]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("key"):
            raise forms.ValidationError("Tick the dead letters whose handler to change.")
        return data
