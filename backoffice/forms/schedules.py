"""The form that creates or changes a schedule. It checks what a form can (JSON that parses,
numbers, choices); everything else is ``jobs.schedules.check``, shared with the API, whose
refusal the page puts beside the field it names."""

from __future__ import annotations

import json
import zoneinfo
from typing import Any

from django import forms

from jobs.models import CatchUp, Schedule, ScheduleAction, ScheduleKind
from jobs.registry import registry
from queues.models import Queue

#: Time zones offered first in the picker (any IANA name is accepted).
COMMON_ZONES = [
    "UTC", "Europe/Lisbon", "Europe/London", "Europe/Paris", "Europe/Berlin",
    "America/New_York", "America/Chicago", "America/Los_Angeles", "Asia/Tokyo",
]  # fmt: skip


class ScheduleForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    enabled = forms.BooleanField(required=False, initial=True)
    action = forms.ChoiceField(choices=ScheduleAction.choices, initial=ScheduleAction.START_JOB)
    job = forms.ChoiceField(required=False, help_text="For “start a job run”.")
    params_text = forms.CharField(
        label="Parameters (JSON)",
        required=False,
        initial="[{}]",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "class": "mono"}),
        help_text="For “start a job run”: a list of objects, one instance each.",
    )
    parallelism = forms.IntegerField(min_value=1, initial=10)
    queue = forms.ModelChoiceField(
        queryset=Queue.objects.order_by("name"),
        required=False,
        help_text="The run's queue (empty: the default job queue), or where the message goes.",
    )
    message_text = forms.CharField(
        label="Message (JSON)",
        required=False,
        initial='{"handler": "log"}',
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "class": "mono"}),
        help_text="For “publish a message”: a JSON object with its handler.",
    )
    kind = forms.ChoiceField(label="When", choices=ScheduleKind.choices, initial=ScheduleKind.CRON)
    cron = forms.CharField(
        required=False,
        max_length=200,
        help_text="minute hour day-of-month month day-of-week, e.g. 0 2 * * * (2 AM daily).",
    )
    every_seconds = forms.IntegerField(required=False, min_value=1, label="Every (seconds)")
    run_at = forms.DateTimeField(
        required=False,
        label="Run at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="For “once”: in the schedule's time zone.",
    )
    time_zone = forms.CharField(
        max_length=64,
        initial="UTC",
        widget=forms.TextInput(attrs={"list": "time-zones"}),
        help_text="An IANA name, e.g. Europe/Lisbon: cron times and “run at” are read in it.",
    )
    catch_up = forms.ChoiceField(choices=CatchUp.choices, initial=CatchUp.RUN_ONCE)

    zones = COMMON_ZONES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        job: Any = self.fields["job"]
        job.choices = [("", "—")] + [(d.name, d.name) for d in registry.all()]

    @classmethod
    def initial_for(cls, schedule: Schedule) -> dict[str, Any]:
        zone = zoneinfo.ZoneInfo(schedule.time_zone)
        return {
            "name": schedule.name,
            "description": schedule.description,
            "enabled": schedule.enabled,
            "action": schedule.action,
            "job": schedule.job,
            "params_text": json.dumps(schedule.params, ensure_ascii=False),
            "parallelism": schedule.parallelism,
            "queue": schedule.queue_id,
            "message_text": json.dumps(schedule.message, ensure_ascii=False),
            "kind": schedule.kind,
            "cron": schedule.cron,
            "every_seconds": schedule.every_seconds,
            "run_at": schedule.run_at.astimezone(zone).replace(tzinfo=None)
            if schedule.run_at
            else None,
            "time_zone": schedule.time_zone,
            "catch_up": schedule.catch_up,
        }

    def changes(self) -> dict[str, Any]:
        """The schedule's fields from the cleaned form (call after ``is_valid``)."""
        data = self.cleaned_data
        run_at = data.get("run_at")
        if run_at is not None and data.get("time_zone"):
            try:
                zone = zoneinfo.ZoneInfo(data["time_zone"])
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                zone = None
            if zone is not None:
                run_at = run_at.replace(tzinfo=None).replace(tzinfo=zone)
        return {
            "name": data["name"],
            "description": data.get("description", ""),
            "enabled": data.get("enabled", False),
            "action": data["action"],
            "job": data.get("job") or "",
            "params": data.get("params", []),
            "parallelism": data["parallelism"],
            "queue": data.get("queue"),
            "message": data.get("message", {}),
            "kind": data["kind"],
            "cron": (data.get("cron") or "").strip(),
            "every_seconds": data.get("every_seconds"),
            "run_at": run_at,
            "time_zone": data["time_zone"].strip(),
            "catch_up": data["catch_up"],
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for source, target, default in (("params_text", "params", []),
                                        ("message_text", "message", {})):  # fmt: skip
            text = (data.get(source) or "").strip()
            try:
                data[target] = json.loads(text) if text else default
            except json.JSONDecodeError as exc:
                self.add_error(source, f"This is not JSON: {exc}.")
        return data


FORM_FIELD = {"params": "params_text", "message": "message_text"}


def show_refusal(form: ScheduleForm, errors: dict[str, list[str]], message: str) -> None:
    """Put a refusal from ``jobs.schedules`` beside the field it names (or on the form)."""
    placed = False
    for field, problems in errors.items():
        name = FORM_FIELD.get(field, field)
        if name in form.fields:
            for problem in problems:
                form.add_error(name, problem)
            placed = True
    if not placed:
        form.add_error(None, message)
