"""Forms for queues, their table links and a test message.

Like the schema forms, these only gather what a person typed. Whether a queue is valid for its
type is ``Queue.clean``'s call, run by ``queues.services`` (the API runs the same), and
``apply_queue_errors`` puts its errors next to the inputs they concern.

The secret is write-only: the input never renders a value back (``render_value=False``) and
no page shows any of it, a blank one keeps the stored secret, and removing it is a separate,
explicit checkbox. Changing the type, URL or user name of a queue with a stored secret needs
the secret typed again (or removed): ``queues.services.update_queue`` refuses it otherwise.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from backoffice.forms.errors import ErrorSummary
from backoffice.forms.schema import apply_errors
from queues.backends import backend_class
from queues.models import Queue, QueueLink, QueueType
from queues.models.queue import OPTION_ERRORS
from zstorage.models import Table

#: Model errors that belong to an input with another name.
QUEUE_ERROR_INPUTS = {"secret_ciphertext": "secret"}
#: The inputs of a connection to an engine elsewhere (a type whose backend has a url setting).
CONNECTION_INPUTS = ("url", "username", "secret", "clear_secret")
#: What an input that does not apply to the chosen type stands for when it is not sent.
NOT_GIVEN: dict[str, Any] = {
    "url": "",
    "username": "",
    "secret": "",
    "region": "",
    "fifo": False,
    "partitions": None,
    "max_priority": 0,
}


def applies(name: str, queue_type: str) -> bool:
    """Whether the queue form's input ``name`` means anything for ``queue_type``: the type's
    backend says so (its ``queue_options``, whether it connects to an engine elsewhere
    (``url_setting``), whether messages are leased for a visibility timeout)."""
    engine = backend_class(queue_type)
    if name in OPTION_ERRORS:
        return name in engine.queue_options
    if name in CONNECTION_INPUTS:
        return bool(engine.url_setting)
    if name == "visibility_timeout":
        return engine.leases
    return True


def chosen_secret(data: dict[str, Any], *, new: bool) -> str | None:
    """Take the write-only secret inputs out of a form's ``data``: what to store — None keeps
    the stored secret (a blank input on an existing object), "" removes it (the "remove"
    checkbox), anything else replaces it."""
    clear = data.pop("clear_secret", False)
    typed: str = data.pop("secret", "")
    if clear:
        return ""
    return typed if new else (typed or None)


class JsonObjectField(forms.CharField):
    """A JSON object typed into a textarea; blank is ``{}``."""

    widget = forms.Textarea(attrs={"rows": 4, "spellcheck": "false"})

    def to_python(self, value: Any) -> Any:
        text = super().to_python(value) or ""
        if not text.strip():
            return {}
        try:
            parsed = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"This is not valid JSON: {exc}.") from None
        except RecursionError:
            raise forms.ValidationError("This JSON nests too deeply.") from None
        if not isinstance(parsed, dict):
            raise forms.ValidationError('Enter a JSON object, e.g. {"status": "paid"}.')
        return parsed

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return json.dumps(value, indent=2, ensure_ascii=False) if value else ""
        return value


class QueueForm(ErrorSummary):
    name = forms.CharField(
        max_length=80,
        help_text="The queue's name on the engine too (SQS queue, Kafka topic, RabbitMQ queue). "
        "Renaming points the queue at another one there.",
    )
    type = forms.ChoiceField(
        choices=QueueType.choices,
        initial=QueueType.DATABASE,
        # The inputs show or hide as the type changes (forms.js, from ``types_for``).
        widget=forms.Select(attrs={"data-type-switch": ""}),
        help_text="The form shows the settings this type takes.",
    )
    url = forms.CharField(
        max_length=500,
        required=False,
        label="URL",
        help_text="SQS endpoint URL, AMQP URL without credentials, or Kafka bootstrap servers "
        "(host:port,...). Blank: this deployment's own engine.",
    )
    region = forms.CharField(max_length=50, required=False, help_text="SQS only.")
    username = forms.CharField(
        max_length=200, required=False, help_text="User name, or the access key id for SQS."
    )
    secret = forms.CharField(
        required=False,
        strip=False,
        label="Password or secret key",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    clear_secret = forms.BooleanField(required=False, label="Remove the stored secret")
    visibility_timeout = forms.IntegerField(
        min_value=0,
        initial=30,
        label="Visibility timeout (seconds)",
        help_text="How long a fetched message stays hidden before it is delivered again "
        "(SQS and database queues).",
    )
    max_attempts = forms.IntegerField(
        min_value=1,
        max_value=1000,
        initial=5,
        label="Max attempts",
        help_text="Deliveries before a message is dead-lettered.",
    )
    fifo = forms.BooleanField(required=False, label="FIFO (SQS only)")
    partitions = forms.IntegerField(required=False, min_value=1, help_text="Kafka only (blank: 3).")
    max_priority = forms.IntegerField(
        required=False,
        min_value=0,
        initial=0,
        label="Max priority",
        help_text="RabbitMQ only: 1 to 10 declares a priority queue (higher first); 0: none. "
        "It cannot change on an existing RabbitMQ queue: it takes a new queue.",
    )
    pause_after_failures = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=1_000_000,
        label="Pause after N consecutive failures",
        help_text="Stop fetching after this many handler failures in a row and open an alert, "
        "until an admin resumes the queue (messages wait meanwhile). Blank: never.",
    )
    ordered_by_key = forms.TypedChoiceField(
        required=False,
        choices=[
            ("", "Default: on when a table link feeds the queue"),
            ("True", "On"),
            ("False", "Off"),
        ],
        coerce=lambda value: value == "True",
        empty_value=None,
        label="Per-key order",
        help_text="Each worker runs the messages of one ordering key (a record's events) one "
        "at a time, in arrival order, and different keys in parallel; a retrying message "
        "holds back only its key's later messages. SQS: FIFO queues only.",
    )
    enabled = forms.BooleanField(required=False, initial=True)
    allowed_handlers = forms.CharField(
        required=False,
        max_length=5000,
        label="Allowed handlers",
        help_text="The handlers messages on this queue may name, separated by commas; the "
        "publish API refuses others (403 handler_not_allowed). Blank: any handler registered "
        "here. Name a handler that runs only on workers elsewhere here too, so that it is "
        "accepted although no module here registers it.",
    )

    def __init__(self, *args: Any, queue: Queue | None = None, **kwargs: Any) -> None:
        self.queue = queue
        if queue is not None:
            initial = {
                name: getattr(queue, name) for name in self.base_fields if hasattr(queue, name)
            }
            initial["allowed_handlers"] = ", ".join(queue.allowed_handlers or [])
            kwargs.setdefault("initial", initial)
        super().__init__(*args, **kwargs)
        if queue is None or not queue.has_secret:
            del self.fields["clear_secret"]
            self.fields["secret"].help_text = "Stored encrypted; never shown again."
        else:
            self.fields["secret"].help_text = (
                "A secret is stored. Leave blank to keep it; changing the type, URL or user name "
                "needs it typed again (or removed)."
            )
        chosen = self.data.get("type") if self.is_bound else None
        self.chosen_type = chosen if chosen in QueueType.values else None
        for name, field in self.fields.items():
            if self.chosen_type and not applies(name, self.chosen_type):
                field.required = False  # not sent when hidden

    @property
    def types_for(self) -> dict[str, str]:
        """For each input, the queue types it applies to (``data-for-types`` in the page)."""
        return {
            name: " ".join(t for t in QueueType.values if applies(name, t)) for name in self.fields
        }

    def clean(self) -> dict[str, Any]:
        """An input of another type than the chosen one that was not sent (the page hides
        and disables it) stands for "not given"; one that was sent is checked as typed, so the
        page without scripts, which shows every input, is told what does not apply."""
        data = super().clean() or {}
        if self.chosen_type is None:
            return data
        for name in self.fields:
            if applies(name, self.chosen_type) or name in self.data:
                continue
            if name in NOT_GIVEN:
                data[name] = NOT_GIVEN[name]
            elif name == "visibility_timeout":
                current = self.queue.visibility_timeout if self.queue else None
                data[name] = current or self.fields[name].initial
            elif name == "clear_secret":
                data[name] = True  # a type without a connection takes no stored secret
            self.errors.pop(name, None)
        if self.errors:
            self._engine_errors()
        return data

    def _engine_errors(self) -> None:
        """Once the form refuses something the service is not asked, so the engine's own checks
        (``Queue.clean``) of the other inputs are made here, to show every problem at once."""
        queue = copy.copy(self.queue) if self.queue is not None else Queue()
        for name, value in self.values().items():
            if name not in self.errors and name != "secret" and hasattr(queue, name):
                setattr(queue, name, value)
        try:
            queue.clean()
        except ValidationError as exc:
            for name, messages in exc.message_dict.items():
                target = QUEUE_ERROR_INPUTS.get(name, name)
                if target in self.fields and target not in self.errors:
                    for message in messages:
                        self.add_error(target, message)

    def values(self) -> dict[str, Any]:
        """The queue's fields as ``create_queue``/``update_queue`` take them, and the secret:
        None keeps the stored one, "" removes it."""
        data = dict(self.cleaned_data)
        secret = chosen_secret(data, new=self.queue is None)
        for name in ("url", "region", "username"):
            data[name] = (data.get(name) or "").strip()
        data["max_priority"] = data.get("max_priority") or 0
        names = [n.strip() for n in (data.get("allowed_handlers") or "").split(",")]
        data["allowed_handlers"] = [n for n in names if n] or None
        return {**data, "secret": secret}

    def apply(self, errors: Mapping[str, list[str]]) -> None:
        apply_errors(self, errors, rename=QUEUE_ERROR_INPUTS)


class TestMessageForm(forms.Form):
    """A message to see a queue work: the handler it names and the rest of its body."""

    handler = forms.CharField(
        max_length=200,
        initial="log",
        help_text="The handler a worker runs for it.",
        widget=forms.TextInput(attrs={"list": "known-handlers", "autocomplete": "off"}),
    )
    payload = JsonObjectField(
        required=False,
        label="Payload (JSON object)",
        help_text='Merged into the message with "handler" and "test": true.',
    )

    def body(self) -> dict[str, Any]:
        return {**self.cleaned_data["payload"], "handler": self.cleaned_data["handler"]}


class LinkForm(forms.Form):
    """Which of a table's record events the queue receives, and for which handler."""

    table = forms.ModelChoiceField(
        queryset=Table.objects.order_by("name"), to_field_name="slug", empty_label="Choose a table…"
    )
    on_create = forms.BooleanField(required=False, initial=True, label="Created")
    on_update = forms.BooleanField(required=False, initial=True, label="Updated")
    on_delete = forms.BooleanField(required=False, initial=True, label="Deleted")
    filter = JsonObjectField(
        required=False,
        label="Filter (query language)",
        help_text='Only records matching it, e.g. {"status": "paid", "total": {"$gt": 100}}. '
        "Blank: every record.",
    )
    handler = forms.CharField(
        max_length=200,
        help_text="The handler named in each message: one registered here (the Handlers page "
        "lists them) or one the queue's allowed handlers name.",
        widget=forms.TextInput(attrs={"list": "known-handlers", "autocomplete": "off"}),
    )
    enabled = forms.BooleanField(required=False, initial=True)

    @classmethod
    def for_link(cls, link: QueueLink, data: Any = None) -> LinkForm:
        initial = {
            "table": link.table.slug,
            "on_create": link.on_create,
            "on_update": link.on_update,
            "on_delete": link.on_delete,
            "filter": link.filter,
            "handler": link.handler,
            "enabled": link.enabled,
        }
        return cls(data, initial=initial)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not any(data.get(kind) for kind in ("on_create", "on_update", "on_delete")):
            raise forms.ValidationError("Tick at least one kind of change.")
        return data

    def fill(self, link: QueueLink) -> QueueLink:
        for name, value in self.cleaned_data.items():
            setattr(link, name, value)
        return link
