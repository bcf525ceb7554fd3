"""Jobs for admins: the registered jobs with a start form, the history of runs, a run's page
(live progress, counts, instances, failures with their parameters and error, pause, resume,
cancel, retry failed, results as JSON or CSV), and a dashboard panel of the runs in progress.

Every change goes through ``jobs.runs``, as the REST API's do; a refusal (``JobError``) is
shown as a message, never a 500.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.roles import is_admin
from backoffice.access import admin_required, get_for
from backoffice.dashboard import Panel, register_panel
from backoffice.forms.jobs import StartJobForm
from backoffice.values import docstring_html
from jobs import runs
from jobs.errors import JobError
from jobs.models import JobInstance, JobRun, Trigger
from jobs.registry import registry
from jobs.states import OPEN_RUN_STATES, TERMINAL_RUN_STATES, InstanceState, RunState

RUNS_PER_PAGE = 50
INSTANCES_PER_PAGE = 50
DASHBOARD_RUNS = 5

#: How a run's state is shown: the stylesheet's badge colours.
STATE_BADGES = {
    RunState.SCHEDULED: "",
    RunState.ACTIVE: "update",
    RunState.PAUSED: "",
    RunState.FINISHING: "update",
    RunState.COMPLETED: "create",
    RunState.COMPLETED_WITH_ERRORS: "revoked",
    RunState.CANCELLED: "",
    RunState.FAILED: "revoked",
}


def run_url(run: JobRun) -> str:
    return reverse("jobs:run", args=[run.pk])


@admin_required
@never_cache
@require_http_methods(["GET", "POST"])
def job_list(request: HttpRequest) -> HttpResponse:
    """The registered jobs, and the form that starts a run of one."""
    form = StartJobForm(request.POST or None, request.FILES or None,
                        initial={"job": request.GET.get("job", "")})  # fmt: skip
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                run = runs.start(
                    data["job"],
                    data["params"],
                    parallelism=data["parallelism"],
                    priority=data["priority"],
                    queue=data["queue"],
                    on_complete=data["on_complete"],
                    on_complete_handler=data["on_complete_handler"],
                    trigger=Trigger.PAGE,
                    user=request.user,
                )
            except JobError as exc:
                form.add_error(None, exc.message)
            else:
                count = f"{run.total} instance" + ("" if run.total == 1 else "s")
                messages.success(request, f"Started {run.job} over {count}.")
                return redirect(run_url(run))
        status = 422
    jobs = [(d, docstring_html(d.description)) for d in registry.all()]
    context = {"jobs": jobs, "form": form, "crumbs": [("Jobs", None)]}
    return render(request, "jobs/list.html", context, status=status)


@admin_required
@never_cache
@require_GET
def run_list(request: HttpRequest) -> HttpResponse:
    """Every run, newest first, filtered by job and state."""
    found: QuerySet[JobRun] = JobRun.objects.select_related("queue")
    job = request.GET.get("job", "").strip()
    state = request.GET.get("state", "")
    if job:
        found = found.filter(job=job)
    if state in RunState.values:
        found = found.filter(state=state)
    page = Paginator(found, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "rows": [_row(run) for run in page],
        "filters": {"job": job, "state": state if state in RunState.values else ""},
        "job_names": sorted({d.name for d in registry.all()} | {job} - {""}),
        "states": RunState.choices,
        "crumbs": [("Jobs", reverse("jobs:jobs")), ("Runs", None)],
    }
    return render(request, "jobs/runs.html", context)


def _row(run: JobRun) -> dict[str, Any]:
    return {"run": run, "badge": STATE_BADGES[RunState(run.state)], "percent": _percent(run)}


def _percent(run: JobRun) -> float:
    return round(100.0 * run.finished / run.total, 1) if run.total else 100.0


@admin_required
@never_cache
@require_GET
def run_detail(request: HttpRequest, run_id: str) -> HttpResponse:
    """A run: live progress, counts, its instances (by state), actions and downloads."""
    run = get_for(request, JobRun.objects.select_related("queue", "on_complete"), pk=run_id)
    shown = request.GET.get("state", "")
    instances: QuerySet[JobInstance] = run.instances.order_by("index")
    if shown in InstanceState.values:
        instances = instances.filter(state=shown)
    page = Paginator(instances, INSTANCES_PER_PAGE).get_page(request.GET.get("page"))
    summary = runs.summary(run)
    context = {
        "run": run,
        "summary": summary,
        "eta": summary["eta-seconds"],
        "priority": runs.priority_support(run),
        "badge": STATE_BADGES[RunState(run.state)],
        "page": page,
        "instances": _with_params(page),
        "shown": shown if shown in InstanceState.values else "",
        "instance_states": InstanceState.choices,
        "failures": _with_params(
            run.instances.filter(state=InstanceState.ERRORED).order_by("index")[:10]
        ),
        "ended": run.state in TERMINAL_RUN_STATES,
        "can": _actions(run),
        # The streams process (ASGI) holds the stream open; pages name it by its own URL.
        "stream_url": f"{settings.QUAYMASTER_STREAMS_URL.rstrip('/')}/jobs/{run.pk}",
        "crumbs": [
            ("Jobs", reverse("jobs:jobs")),
            ("Runs", reverse("jobs:runs")),
            (f"{run.job} {str(run.pk)[:8]}", None),
        ],
    }
    return render(request, "jobs/run.html", context)


def _with_params(instances: Iterable[JobInstance]) -> list[tuple[JobInstance, str]]:
    """Each instance with its parameters as JSON, as they were typed (not Python's repr)."""
    return [(i, json.dumps(i.params, ensure_ascii=False)) for i in instances]


def _actions(run: JobRun) -> dict[str, bool]:
    state = RunState(run.state)
    return {
        "pause": state in (RunState.ACTIVE, RunState.SCHEDULED),
        "resume": state == RunState.PAUSED,
        "cancel": state in OPEN_RUN_STATES and not run.cancel_requested,
        "retry_failed": state in TERMINAL_RUN_STATES and (run.errored + run.cancelled) > 0,
    }


ACTIONS = {
    "pause": runs.pause,
    "resume": runs.resume,
    "cancel": runs.cancel,
    "retry-failed": lambda run_id, reason: runs.retry_failed(run_id, reason)[0],
}


@admin_required
@require_POST
def run_action(request: HttpRequest, run_id: str, action: str) -> HttpResponse:
    run = get_for(request, JobRun, pk=run_id)
    change = ACTIONS.get(action)
    if change is None:
        messages.error(request, f"Unknown action {action!r}.")
        return redirect(run_url(run))
    try:
        change(run.pk, f"{action} by {request.user.get_username()}")
    except JobError as exc:
        messages.error(request, f"Not done: {exc.message}")
    else:
        messages.success(request, f"Run {action.replace('-', ' ')}: done.")
    return redirect(run_url(run))


@admin_required
@never_cache
@require_GET
def instance_detail(request: HttpRequest, run_id: str, instance_id: str) -> HttpResponse:
    run = get_for(request, JobRun, pk=run_id)
    instance = get_for(request, run.instances.all(), pk=instance_id)
    context = {
        "run": run,
        "instance": instance,
        "params": json.dumps(instance.params, indent=2, ensure_ascii=False),
        "result": json.dumps(instance.result, indent=2, ensure_ascii=False),
        "crumbs": [
            ("Jobs", reverse("jobs:jobs")),
            ("Runs", reverse("jobs:runs")),
            (f"{run.job} {str(run.pk)[:8]}", run_url(run)),
            (f"#{instance.index}", None),
        ],
    }
    return render(request, "jobs/instance.html", context)


@admin_required
@require_GET
def run_results(request: HttpRequest, run_id: str, fmt: str) -> StreamingHttpResponse:
    """Every ended instance with its parameters and its result or error, as one JSON
    document or as CSV, streamed (a run may have 100,000 instances)."""
    if fmt not in ("json", "csv"):
        raise Http404("Results come as .json or .csv.")
    run = get_for(request, JobRun, pk=run_id)
    ended = run.instances.filter(
        state__in=[InstanceState.COMPLETED, InstanceState.ERRORED, InstanceState.CANCELLED]
    ).order_by("index")
    body = _results_csv(ended) if fmt == "csv" else _results_json(run, ended)
    response = StreamingHttpResponse(
        body, content_type="text/csv" if fmt == "csv" else "application/json"
    )
    response["Content-Disposition"] = f'attachment; filename="{run.job}-{run.pk}.{fmt}"'
    return response


def _results_json(run: JobRun, ended: QuerySet[JobInstance]) -> Iterator[str]:
    yield f'{{"run-id": "{run.pk}", "job": {json.dumps(run.job)}, "instances": ['
    for n, instance in enumerate(ended.iterator(chunk_size=2000)):
        row = {
            "instance-id": str(instance.pk),
            "index": instance.index,
            "state": instance.state,
            "params": instance.params,
            "result": instance.result,
            "error": instance.error,
        }
        yield ("," if n else "") + json.dumps(row, ensure_ascii=False)
    yield "]}"


def _results_csv(ended: QuerySet[JobInstance]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["instance_id", "index", "state", "params", "result", "error_type",
                     "error_message", "attempts"])  # fmt: skip
    for instance in ended.iterator(chunk_size=2000):
        error = instance.error or {}
        writer.writerow([
            instance.pk, instance.index, instance.state,
            json.dumps(instance.params, ensure_ascii=False),
            "" if instance.result is None else json.dumps(instance.result, ensure_ascii=False),
            error.get("type", ""), error.get("message", ""), instance.attempts,
        ])  # fmt: skip
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


@register_panel
def jobs_panel(request: HttpRequest) -> Panel | None:
    """Runs in progress (scheduled, active, paused, finishing) with their progress."""
    if not is_admin(request.user):
        return None
    try:
        links = {"runs": reverse("jobs:runs"), "jobs": reverse("jobs:jobs")}
    except NoReverseMatch:
        return None
    open_runs = JobRun.objects.filter(state__in=[s.value for s in OPEN_RUN_STATES])
    context = {
        "rows": [_row(run) for run in open_runs.order_by("-created_at")[:DASHBOARD_RUNS]],
        "count": open_runs.count(),
        "links": links,
    }
    return Panel("Jobs", "jobs/_dashboard.html", context)
