"""Errors as the person filling a form reads them.

``ErrorSummary`` lists every problem of a form at once, each under the label of its input (the
summary at the top of the form, ``templates/backoffice/_error_summary.html``, links each one to
its input). ``form_words`` rewrites what the services word for API clients ("… in
params.value") into the form's own words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django import forms

#: "in params.value", "as options.table": how the services name a part of an API payload.
_PAYLOAD_PATH = re.compile(r"\s+(?:in|as)\s+(?:params|options)\.\w+(?=[.:;,]|$)")


def form_words(message: str) -> str:
    """A service's message without the API payload's paths, which no input of a form shows."""
    return _PAYLOAD_PATH.sub("", str(message))


@dataclass(frozen=True)
class Problem:
    """One error of a form: the label of its input (blank for the whole form), the input's
    id to link to, and the message."""

    label: str
    input_id: str
    message: str


class ErrorSummary(forms.Form):
    """A form whose template can list every error at once (``problems``)."""

    def problems(self) -> list[Problem]:
        found = [Problem("", "", str(message)) for message in self.non_field_errors()]
        for name in self.fields:
            bound = self[name]
            for message in bound.errors:
                found.append(Problem(str(bound.label or name), bound.id_for_label, str(message)))
        return found

    def add_error(self, field: str | None, error: Any) -> None:
        """Every error goes through ``form_words``; one for an input already holding the same
        message is not added twice (a form's own check and the service's may agree)."""
        if isinstance(error, str):
            error = form_words(error)
            if field is not None and error in self.errors.get(field, []):
                return
        super().add_error(field, error)
