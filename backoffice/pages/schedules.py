"""Schedules for admins: the list with each one's next fire (in its own time zone) and last
fire, create and edit (the same checks as the API, shown beside their fields), enable and
disable, run now, delete, and a dashboard panel of the next fires and the schedules whose last
fire failed. Changes go through ``jobs.schedules``, which keeps Celery beat's row in step."""

from __future__ import annotations

import zoneinfo
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts.roles import is_admin
from backoffice.access import admin_required, get_for
from backoffice.dashboard import Panel, register_panel
from backoffice.forms.schedules import ScheduleForm, show_refusal
from jobs import firing, schedules
from jobs.errors import (
    InvalidParallelism,
    InvalidParameters,
    InvalidRunOptions,
    JobError,
    TooManyInstances,
    UnknownJob,
)
from jobs.models import FireOutcome, Schedule

FIRES_SHOWN = 20
DASHBOARD_NEXT = 5

#: Which form field a refusal without field errors belongs to.
FIELD_OF = {
    UnknownJob: "job",
    InvalidRunOptions: "queue",
    InvalidParameters: "params",
    TooManyInstances: "params",
    InvalidParallelism: "parallelism",
}

OUTCOME_BADGES = {
    FireOutcome.STARTED: "create",
    FireOutcome.PUBLISHED: "create",
    FireOutcome.SKIPPED: "",
    FireOutcome.FAILED: "revoked",
}


def _row(schedule: Schedule, now: Any) -> dict[str, Any]:
    following = firing.next_due(schedule, now)
    zone = zoneinfo.ZoneInfo(schedule.time_zone)
    last = schedule.fires.order_by("-fired_at").first()
    return {
        "schedule": schedule,
        "next": following.astimezone(zone) if following else None,
        "last": last,
        "last_badge": OUTCOME_BADGES.get(FireOutcome(last.outcome), "") if last else "",
    }


@admin_required
@never_cache
@require_http_methods(["GET"])
def schedule_list(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    rows = [_row(s, now) for s in Schedule.objects.select_related("queue")]
    return render(
        request,
        "jobs/schedules.html",
        {"rows": rows, "crumbs": [("Jobs", reverse("jobs:jobs")), ("Schedules", None)]},
    )


def _save(request: HttpRequest, schedule: Schedule, form: ScheduleForm) -> bool:
    if not form.is_valid():
        return False
    try:
        schedules.save(schedule, form.changes())
    except JobError as exc:
        errors = getattr(exc, "errors", None) or {FIELD_OF.get(type(exc), ""): [exc.message]}
        show_refusal(form, errors, exc.message)
        return False
    return True


@admin_required
@never_cache
@require_http_methods(["GET", "POST"])
def schedule_create(request: HttpRequest) -> HttpResponse:
    form = ScheduleForm(request.POST or None)
    schedule = Schedule(created_by=request.user if request.user.is_authenticated else None)
    if request.method == "POST":
        if _save(request, schedule, form):
            messages.success(request, f"Schedule {schedule.name!r} saved.")
            return redirect("jobs:schedule", schedule.pk)
        return _form_page(request, form, None, status=422)
    return _form_page(request, form, None)


@admin_required
@never_cache
@require_http_methods(["GET", "POST"])
def schedule_detail(request: HttpRequest, schedule_id: int) -> HttpResponse:
    schedule = get_for(request, Schedule, pk=schedule_id)
    if request.method == "POST":
        form = ScheduleForm(request.POST)
        if _save(request, schedule, form):
            messages.success(request, f"Schedule {schedule.name!r} saved.")
            return redirect("jobs:schedule", schedule.pk)
        schedule.refresh_from_db()
        return _form_page(request, form, schedule, status=422)
    return _form_page(request, ScheduleForm(initial=ScheduleForm.initial_for(schedule)), schedule)


def _form_page(
    request: HttpRequest, form: ScheduleForm, schedule: Schedule | None, status: int = 200
) -> HttpResponse:
    title = schedule.name if schedule else "New schedule"
    context: dict[str, Any] = {
        "form": form,
        "schedule": schedule,
        "crumbs": [
            ("Jobs", reverse("jobs:jobs")),
            ("Schedules", reverse("jobs:schedules")),
            (title, None),
        ],
    }
    if schedule is not None:
        context["row"] = _row(schedule, timezone.now())
        context["fires"] = [
            {"fire": f, "badge": OUTCOME_BADGES.get(FireOutcome(f.outcome), "")}
            for f in schedule.fires.select_related("run")[:FIRES_SHOWN]
        ]
    return render(request, "jobs/schedule.html", context, status=status)


@admin_required
@require_POST
def schedule_toggle(request: HttpRequest, schedule_id: int) -> HttpResponse:
    schedule = get_for(request, Schedule, pk=schedule_id)
    schedules.set_enabled(schedule, not schedule.enabled)
    state = "enabled" if schedule.enabled else "disabled"
    messages.success(request, f"Schedule {schedule.name!r} {state}.")
    return redirect(request.POST.get("next") or reverse("jobs:schedules"))


@admin_required
@require_POST
def schedule_run_now(request: HttpRequest, schedule_id: int) -> HttpResponse:
    schedule = get_for(request, Schedule, pk=schedule_id)
    fire = schedules.run_now(schedule)
    if fire.outcome == FireOutcome.FAILED:
        messages.error(request, f"Not run: {fire.error}")
        return redirect("jobs:schedule", schedule.pk)
    if fire.run_id is not None:
        messages.success(request, f"Schedule {schedule.name!r} started a run.")
        return redirect("jobs:run", fire.run_id)
    messages.success(request, f"Schedule {schedule.name!r} published message {fire.message_id}.")
    return redirect("jobs:schedule", schedule.pk)


@admin_required
@require_POST
def schedule_delete(request: HttpRequest, schedule_id: int) -> HttpResponse:
    schedule = get_for(request, Schedule, pk=schedule_id)
    name = schedule.name
    schedules.delete(schedule)
    messages.success(request, f"Schedule {name!r} deleted.")
    return redirect("jobs:schedules")


@register_panel
def schedules_panel(request: HttpRequest) -> Panel | None:
    """The next fires, and schedules whose last fire failed."""
    if not is_admin(request.user):
        return None
    try:
        link = reverse("jobs:schedules")
    except NoReverseMatch:
        return None
    now = timezone.now()
    rows = [_row(s, now) for s in Schedule.objects.select_related("queue")]
    upcoming = sorted((r for r in rows if r["next"]), key=lambda r: r["next"])[:DASHBOARD_NEXT]
    failing = [r for r in rows if r["last"] is not None and r["last"].outcome == "failed"]
    context = {"upcoming": upcoming, "failing": failing, "link": link, "count": len(rows)}
    return Panel("Schedules", "jobs/_schedules_dashboard.html", context)
