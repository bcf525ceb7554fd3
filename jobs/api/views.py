"""``/api/v1/jobs/``: registered jobs, and runs — start, watch, steer, results.

Admins only (jobs run arbitrary registered code over the whole platform). Errors are the
API's JSON errors with stable codes: ``unknown_job``, ``invalid_parameters``,
``too_many_instances``, ``invalid_parallelism``, ``invalid_run_options`` (400),
``run_not_found`` (404), ``illegal_transition`` (409).
"""

from __future__ import annotations

import time
from typing import Any

from django.db.models import QuerySet
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsPlatformAdmin, TokenScope
from accounts.scopes import Scope
from jobs import runs
from jobs.api.serializers import JobInfoSerializer, StartRunSerializer
from jobs.models import JobInstance, JobRun, Trigger
from jobs.registry import registry
from jobs.results import instance_row, page_bounds, results
from jobs.states import TERMINAL_RUN_STATES, InstanceState, RunState

#: The largest ``?offset=``: offset and limit together stay within the databases' 64-bit
#: integers (beyond, PostgreSQL refuses the statement: a 500).
MAX_OFFSET = 2**62

#: ``?wait=`` is capped, so a results request never holds a web worker for long.
MAX_WAIT_SECONDS = 30.0


class JobAdmins(IsPlatformAdmin):
    message = "Only admins run jobs."


class AdminView(APIView):
    permission_classes = [permissions.IsAuthenticated, TokenScope, JobAdmins]
    token_scope = Scope.ADMIN


class JobListView(AdminView):
    @extend_schema(responses=JobInfoSerializer(many=True))
    def get(self, request: Request) -> Response:
        """The registered jobs with their descriptions."""
        return Response([{"name": d.name, "description": d.description} for d in registry.all()])


class RunListView(AdminView):
    @extend_schema(
        operation_id="v1_jobs_runs_list",
        responses=dict,
        parameters=[
            OpenApiParameter("job", str),
            OpenApiParameter("state", str, enum=RunState.values),
            OpenApiParameter("trigger", str, enum=Trigger.values),
            OpenApiParameter("created_after", str, description="ISO 8601 date-time"),
            OpenApiParameter("created_before", str, description="ISO 8601 date-time"),
            OpenApiParameter("offset", int),
            OpenApiParameter("limit", int),
        ],
    )
    def get(self, request: Request) -> Response:
        """Runs, newest first, filtered by job, state, trigger and creation time."""
        found: QuerySet[JobRun] = JobRun.objects.select_related("queue", "on_complete")
        query = request.query_params
        if query.get("job"):
            found = found.filter(job=query["job"])
        for key, choices in (("state", RunState.values), ("trigger", Trigger.values)):
            if query.get(key):
                if query[key] not in choices:
                    raise ValidationError({key: [f"Choose one of {', '.join(choices)}."]})
                found = found.filter(**{key: query[key]})
        for key, lookup in (("created_after", "gte"), ("created_before", "lt")):
            if query.get(key):
                moment = _datetime(query[key], key)
                found = found.filter(**{f"created_at__{lookup}": moment})
        offset, limit = _page_bounds(query)
        total = found.count()
        page = [runs.summary(run, transitions=False) for run in found[offset : offset + limit]]
        return Response({"count": total, "offset": offset, "limit": limit, "results": page})

    @extend_schema(request=StartRunSerializer, responses={201: dict})
    def post(self, request: Request) -> Response:
        """Start a run: one instance per parameter object."""
        form = StartRunSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        run = runs.start(
            data["job"],
            data["params"],
            parallelism=data.get("parallelism", 10),
            priority=data.get("priority", 0),
            queue=data.get("queue") or None,
            on_complete=data.get("on_complete") or None,
            on_complete_handler=data.get("on_complete_handler") or "log",
            not_before=data.get("not_before"),
            deadline=data.get("deadline"),
            trigger=Trigger.API,
            user=request.user,
        )
        return Response(
            {"run-id": str(run.pk), "instances": run.total, "state": run.state},
            status=status.HTTP_201_CREATED,
        )


class RunDetailView(AdminView):
    @extend_schema(responses=dict)
    def get(self, request: Request, run_id: str) -> Response:
        """State, counts per instance state, progress, throughput, ETA and timings."""
        return Response(runs.summary(runs.get_run(run_id)))


class RunInstancesView(AdminView):
    @extend_schema(
        responses=dict,
        parameters=[
            OpenApiParameter("state", str, enum=InstanceState.values),
            OpenApiParameter("offset", int),
            OpenApiParameter("limit", int),
        ],
    )
    def get(self, request: Request, run_id: str) -> Response:
        """The run's instances in index order, optionally of one state."""
        run = runs.get_run(run_id)
        found: QuerySet[JobInstance] = run.instances.order_by("index")
        state = request.query_params.get("state")
        if state:
            if state not in InstanceState.values:
                raise ValidationError(
                    {"state": [f"Choose one of {', '.join(InstanceState.values)}."]}
                )
            found = found.filter(state=state)
        offset, limit = _page_bounds(request.query_params)
        return Response(
            {
                "count": found.count(),
                "offset": offset,
                "limit": limit,
                "results": [instance_row(i) for i in found[offset : offset + limit]],
            }
        )


class RunResultsView(AdminView):
    @extend_schema(
        responses=dict,
        parameters=[
            OpenApiParameter(
                "wait",
                float,
                description=f"Seconds to wait for the run to end (≤ {MAX_WAIT_SECONDS:g})",
            ),
            OpenApiParameter("offset", int),
            OpenApiParameter("limit", int),
        ],
    )
    def get(self, request: Request, run_id: str) -> Response:
        """Results split into succeeded and failed, each with its parameters."""
        run = runs.get_run(run_id)
        wait = _wait_seconds(request.query_params.get("wait"))
        deadline = time.monotonic() + wait
        while run.state not in TERMINAL_RUN_STATES and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))  # poll until the deadline
            run.refresh_from_db(fields=["state"])
        offset, limit = _page_bounds(request.query_params)
        return Response(results(run, offset, limit))


class RunActionView(AdminView):
    action = ""

    @extend_schema(request=None, responses=dict)
    def post(self, request: Request, run_id: str) -> Response:
        reason = f"{self.action} by {request.user.get_username()}"
        if self.action == "pause":
            run = runs.pause(run_id, reason)
        elif self.action == "resume":
            run = runs.resume(run_id, reason)
        elif self.action == "cancel":
            run = runs.cancel(run_id, reason)
        else:
            run, _ = runs.retry_failed(run_id, reason)
        return Response(runs.summary(run))


def _page_bounds(query: Any) -> tuple[int, int]:
    offset, limit = page_bounds(query)
    if offset > MAX_OFFSET:
        raise ValidationError({"offset": [f"Out of range (at most {MAX_OFFSET})."]})
    return offset, limit


def _datetime(value: str, key: str) -> Any:
    moment = parse_datetime(value)
    if moment is None:
        raise ValidationError({key: ["Use an ISO 8601 date-time, e.g. 2026-01-31T12:00:00Z."]})
    return moment


def _wait_seconds(value: str | None) -> float:
    if value in (None, ""):
        return 0.0
    try:
        seconds = float(value)
    except ValueError:
        raise ValidationError({"wait": ["A number of seconds."]}) from None
    if not 0 <= seconds <= MAX_WAIT_SECONDS or seconds != seconds:
        raise ValidationError({"wait": [f"Between 0 and {MAX_WAIT_SECONDS:g} seconds."]})
    return seconds
