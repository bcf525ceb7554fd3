"""The form that starts a job run from the back-office: which job, its parameters (a JSON list
typed in, or a JSON or CSV file), parallelism, priority, and the queues it runs on and
reports to.

Everything the jobs app checks (``jobs.params``, ``jobs.runs``) is checked here first, so a
refusal is shown beside the field it concerns and nothing is started."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.conf import settings

from jobs.errors import JobError
from jobs.models.runs import MAX_RUN_PRIORITY
from jobs.params import check_params, parse_params_file
from jobs.registry import registry
from jobs.runs import MAX_PARALLELISM
from queues.models import Queue


def _enabled_queues() -> Any:
    return Queue.objects.filter(enabled=True).order_by("name")


class StartJobForm(forms.Form):
    job = forms.ChoiceField(help_text="A registered job (see the list above).")
    params_text = forms.CharField(
        label="Parameters (JSON)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "class": "mono"}),
        help_text='A list of objects, one instance each, e.g. [{"order": 1}, {"order": 2}].',
    )
    params_file = forms.FileField(
        label="…or a parameters file",
        required=False,
        help_text="A .json file (a list of objects) or a .csv file (a header, then one row each).",
    )
    parallelism = forms.IntegerField(
        min_value=1,
        max_value=MAX_PARALLELISM,
        initial=10,
        help_text="At most this many instances are on the queue or running at once.",
    )
    priority = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_RUN_PRIORITY,
        initial=0,
        help_text="Higher first, where the queue's engine has priorities (the database queue, "
        "a RabbitMQ queue with a max priority); SQS and Kafka ignore it.",
    )
    queue = forms.ModelChoiceField(
        queryset=Queue.objects.none(), help_text="The queue the instances run on."
    )
    on_complete = forms.ModelChoiceField(
        queryset=Queue.objects.none(),
        required=False,
        label="On complete",
        help_text="Where the job.completed message goes when the last instance ends (optional).",
    )
    on_complete_handler = forms.CharField(
        max_length=200,
        initial="log",
        label="Completion handler",
        help_text="The handler named in the job.completed message.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        jobs_field: Any = self.fields["job"]
        jobs_field.choices = [(d.name, d.name) for d in registry.all()]
        queue_field: Any = self.fields["queue"]
        queue_field.queryset = _enabled_queues()
        queue_field.initial = _enabled_queues().filter(name=settings.QUAYMASTER_JOB_QUEUE).first()
        done_field: Any = self.fields["on_complete"]
        done_field.queryset = _enabled_queues()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        data["priority"] = data.get("priority") or 0  # blank: the default
        text = (data.get("params_text") or "").strip()
        upload = data.get("params_file")
        if bool(text) == bool(upload):
            self.add_error("params_text", "Type the parameters or choose a file (one of the two).")
            return data
        try:
            if upload:
                data["params"] = parse_params_file(upload.name, upload.read())
            else:
                data["params"] = check_params(json.loads(text))
        except json.JSONDecodeError as exc:
            self.add_error("params_text", f"This is not JSON: {exc}.")
        except JobError as exc:
            self.add_error("params_file" if upload else "params_text", exc.message)
        return data
