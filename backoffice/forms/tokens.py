"""The form that issues an API token: a name to tell it apart, and the queues it may publish to."""

from __future__ import annotations

from django import forms

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
