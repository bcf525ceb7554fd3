"""The form that issues an API token: a name to tell it apart, and the queues it may publish to.

Only someone who may publish is offered the queues (by name): to anyone else the list would
only tell which queues exist.
"""

from __future__ import annotations

from typing import Any

from django import forms

from accounts.roles import may_publish
from queues.models import Queue


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=200, help_text="What uses it, e.g. “billing sync”: shown in the list."
    )
    queues = forms.ModelMultipleChoiceField(
        queryset=Queue.objects.order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="The queues it may publish to. None ticked: every queue.",
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not may_publish(user):
            del self.fields["queues"]

    def chosen_queues(self) -> list[Queue]:
        """The queues ticked (none when the form offers none)."""
        return list(self.cleaned_data.get("queues") or [])
