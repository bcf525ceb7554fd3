"""The form that previews and starts a replay: a table link, which of its records (a filter in
the query language, ids, a "changed between" window — all applying together) and the rate.
The replay service checks everything; its refusals land beside the inputs they concern."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from queues.models import QueueLink
from queues.replay.selection import MAX_IDS


class ReplayForm(forms.Form):
    link = forms.ModelChoiceField(
        queryset=QueueLink.objects.none(),
        label="Table link",
        help_text="The table whose records are sent again, and the queue and handler they go to.",
    )
    filter = forms.CharField(
        label="Filter (query language)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "class": "mono"}),
        help_text='e.g. {"status": "paid"}; empty: every record (the link\'s own filter applies).',
    )
    ids = forms.CharField(
        label="Record ids",
        required=False,
        help_text=f"Comma-separated, at most {MAX_IDS:,}; empty: any.",
    )
    changed_from = forms.CharField(
        label="Changed from", required=False, help_text="ISO 8601, e.g. 2026-11-23T14:00Z."
    )
    changed_to = forms.CharField(
        label="Changed before", required=False, help_text="ISO 8601; a date alone takes that day."
    )
    rate = forms.IntegerField(
        min_value=1, initial=100, label="Rate", help_text="Records written per second."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        links = QueueLink.objects.select_related("table", "queue").filter(
            enabled=True, queue__enabled=True
        )
        field = self.fields["link"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = links.order_by("table__name", "queue__name", "id")
        field.label_from_instance = _label  # type: ignore[method-assign,assignment]

    def clean_filter(self) -> Any:
        text = self.cleaned_data["filter"].strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise forms.ValidationError(f"This is not JSON: {error.msg}.") from None

    def clean_ids(self) -> list[int] | None:
        text = self.cleaned_data["ids"].replace(" ", "").strip(",")
        if not text:
            return None
        try:
            return [int(part) for part in text.split(",") if part]
        except ValueError:
            raise forms.ValidationError("Whole numbers separated by commas.") from None

    def selection(self) -> dict[str, Any]:
        data = self.cleaned_data
        found: dict[str, Any] = {}
        for key in ("filter", "ids", "changed_from", "changed_to"):
            if data.get(key) not in (None, ""):
                found[key] = data[key]
        return found


def _label(link: QueueLink) -> str:
    return f"{link.table.name} → {link.queue.name} ({link.handler})"
