"""The webhook endpoint form: where the built-in ``webhook`` handler may post, its signing
secret, its timeout and the queues whose messages may use it.

The secret is write-only, as a queue's: the input never renders a value back, a blank one keeps
the stored secret, and removing it is a separate checkbox. Changing the URL to another host
removes the stored secret unless a new one is typed with the change
(``workers.endpoints.update_endpoint``). A URL written with a non-public IP address is refused
here already; a host name is checked where it counts, at each send after DNS.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms

from backoffice.forms.queues import chosen_secret
from backoffice.forms.schema import apply_errors
from queues.models import Queue
from workers.models import WebhookEndpoint
from workers.webhook_client import check_url, literal_refusal

#: Model errors that belong to an input with another name.
ERROR_INPUTS = {"secret_ciphertext": "secret"}
AT_SEND_TIME = (
    "Host names are checked at each send, after DNS: one that resolves to such an address is "
    "refused then."
)


class WebhookEndpointForm(forms.Form):
    name = forms.SlugField(
        max_length=80,
        help_text='What messages name: {"handler": "webhook", "endpoint": "<name>", '
        '"payload": {…}}. Letters, digits, "-" and "_".',
    )
    url = forms.CharField(
        max_length=500,
        label="URL",
        help_text="http:// or https://. At each send its host must resolve to public addresses "
        "only (or to QUAYMASTER_WEBHOOK_ALLOWED_NETWORKS); redirects are not followed.",
    )
    secret = forms.CharField(
        required=False,
        strip=False,
        label="Signing secret",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    clear_secret = forms.BooleanField(
        required=False, label="Remove the stored secret (send unsigned)"
    )
    timeout = forms.IntegerField(
        min_value=1,
        max_value=30,
        initial=10,
        label="Timeout (seconds)",
        help_text="How long one attempt may take in all; no answer in time is retried later.",
    )
    queues = forms.ModelMultipleChoiceField(
        queryset=Queue.objects.order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Only messages on these queues may post to it.",
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args: Any, endpoint: WebhookEndpoint | None = None, **kwargs: Any) -> None:
        self.endpoint = endpoint
        if endpoint is not None:
            initial = {
                "name": endpoint.name,
                "url": endpoint.url,
                "timeout": endpoint.timeout,
                "enabled": endpoint.enabled,
                "queues": list(endpoint.queues.all()),
            }
            kwargs.setdefault("initial", initial)
        super().__init__(*args, **kwargs)
        if endpoint is None or not endpoint.has_secret:
            del self.fields["clear_secret"]
            self.fields["secret"].help_text = (
                "Signs each POST (X-Quaymaster-Signature: sha256=<HMAC of the body>). Stored "
                "encrypted; never shown again. Blank: unsigned."
            )
        else:
            self.fields["secret"].help_text = (
                "A secret is set. Leave blank to keep it; a URL on another host removes it "
                "unless you type it again."
            )

    def clean_url(self) -> str:
        url = str(self.cleaned_data["url"]).strip()
        try:
            parts = check_url(url)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        refused = literal_refusal(parts.hostname or "")
        if refused:
            raise forms.ValidationError(f"{refused[:1].upper()}{refused[1:]}. {AT_SEND_TIME}")
        return url

    def values(self) -> dict[str, Any]:
        """The endpoint's fields as ``create_endpoint``/``update_endpoint`` take them: the
        secret None keeps the stored one, "" removes it."""
        data = dict(self.cleaned_data)
        secret = chosen_secret(data, new=self.endpoint is None)
        return {**data, "queues": list(data.get("queues") or []), "secret": secret}

    def apply(self, errors: Mapping[str, list[str]]) -> None:
        apply_errors(self, errors, rename=ERROR_INPUTS)
