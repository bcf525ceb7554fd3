"""The form that issues an API token: a name to tell it apart, its scopes, and the queues it
may publish to (and manage, with the admin scope): ticked ones, or all of them, explicitly.

A user is offered only the scopes their own rights can use (publishing to who may publish,
admin to admins), and only someone who may publish is offered the queues (by name): to anyone
else the list would only tell which queues exist.
"""

from __future__ import annotations

from typing import Any

from django import forms

from accounts.roles import is_admin, may_publish
from accounts.scopes import Scope
from queues.models import Queue


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=200, help_text="What uses it, e.g. “billing sync”: shown in the list."
    )
    scopes = forms.MultipleChoiceField(
        choices=[(s.value, s.label) for s in Scope],
        widget=forms.CheckboxSelectMultiple,
        help_text="What the token may be used for; never more than you may do yourself.",
    )
    all_queues = forms.BooleanField(
        required=False,
        label="All queues, present and future",
        help_text="Otherwise only the queues ticked below (none ticked: no queue).",
    )
    queues = forms.ModelMultipleChoiceField(
        queryset=Queue.objects.order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="The queues it may publish to (and manage, with the admin scope).",
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        offered = [Scope.READ, Scope.WRITE]
        if may_publish(user):
            offered.insert(0, Scope.PUBLISH)
        if is_admin(user):
            offered.append(Scope.ADMIN)
        field = self.fields["scopes"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [(s.value, s.label) for s in offered]
        field.initial = [offered[0].value]
        if Scope.PUBLISH not in offered and Scope.ADMIN not in offered:
            del self.fields["queues"]
            del self.fields["all_queues"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        scopes = set(data.get("scopes") or [])
        on_queues = scopes & {Scope.PUBLISH.value, Scope.ADMIN.value}
        if on_queues and not data.get("all_queues") and not data.get("queues"):
            self.add_error(
                "queues",
                "Tick the queues it may use, or “All queues”: a token without queues may "
                "not publish anywhere.",
            )
        return data

    def chosen_scopes(self) -> list[Scope]:
        return [Scope(s) for s in self.cleaned_data["scopes"]]

    def chosen_all_queues(self) -> bool:
        return bool(self.cleaned_data.get("all_queues"))

    def chosen_queues(self) -> list[Queue]:
        """The queues ticked (none when the form offers none, or all queues is ticked)."""
        if self.chosen_all_queues():
            return []
        return list(self.cleaned_data.get("queues") or [])
