"""``/api/v1/jobs/schedules/``: schedules that start a job run or publish a message — list,
create, read, change, delete, and run now. Admins only; the same checks as the Schedules
page (``jobs.schedules``): ``invalid_cron``, ``unknown_job``, ``invalid_run_options`` (a queue
that does not exist or is disabled), ``missing_handler``, ``invalid_schedule`` (400, with the
field), ``schedule_not_found`` (404). Nothing is saved when anything is refused."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from jobs import firing, schedules
from jobs.api.serializers import ScheduleRowSerializer
from jobs.api.views import AdminView
from jobs.errors import InvalidRunOptions
from jobs.models import Schedule, ScheduleFire
from queues.models import Queue

RECENT_FIRES = 10


class ScheduleSerializer(serializers.Serializer[dict[str, Any]]):
    """What a client may send; the checks that need the registry or the queues are in
    ``jobs.schedules.check``, shared with the page."""

    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    enabled = serializers.BooleanField(required=False)
    action = serializers.ChoiceField(choices=["start_job", "publish"])
    job = serializers.CharField(required=False, allow_blank=True, max_length=200)
    params = serializers.JSONField(required=False)
    parallelism = serializers.IntegerField(required=False, min_value=1)
    queue = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text="Queue name: the run's queue, or the target.",
    )
    message = serializers.JSONField(required=False)
    kind = serializers.ChoiceField(choices=["cron", "interval", "once"])
    cron = serializers.CharField(required=False, allow_blank=True, max_length=200)
    #: The column is a 32-bit integer (about 68 years of seconds).
    every_seconds = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=2**31 - 1
    )
    run_at = serializers.DateTimeField(required=False, allow_null=True)
    time_zone = serializers.CharField(required=False, max_length=64)
    catch_up = serializers.ChoiceField(choices=["skip", "run_once"], required=False)


def _changes(data: dict[str, Any]) -> dict[str, Any]:
    changes = dict(data)
    if "queue" in changes:
        name = changes.pop("queue")
        queue = Queue.objects.filter(name=name).first() if name else None
        if name and queue is None:
            raise InvalidRunOptions(f"There is no queue {name!r} for the schedule.")
        changes["queue"] = queue
    return changes


def fire_row(fire: ScheduleFire) -> dict[str, Any]:
    return {
        "id": fire.pk,
        "due_at": fire.due_at.isoformat(),
        "fired_at": fire.fired_at.isoformat(),
        "manual": fire.manual,
        "outcome": fire.outcome,
        "run-id": str(fire.run_id) if fire.run_id else None,
        "message-id": str(fire.message_id) if fire.message_id else None,
        "error": fire.error,
    }


def schedule_row(schedule: Schedule, *, fires: bool = False) -> dict[str, Any]:
    following = firing.next_due(schedule, timezone.now())
    row: dict[str, Any] = {
        "id": schedule.pk,
        "name": schedule.name,
        "description": schedule.description,
        "enabled": schedule.enabled,
        "action": schedule.action,
        "job": schedule.job,
        "params": schedule.params,
        "parallelism": schedule.parallelism,
        "queue": schedule.queue.name if schedule.queue else None,
        "message": schedule.message,
        "kind": schedule.kind,
        "cron": schedule.cron,
        "every_seconds": schedule.every_seconds,
        "run_at": schedule.run_at.isoformat() if schedule.run_at else None,
        "time_zone": schedule.time_zone,
        "catch_up": schedule.catch_up,
        "next_fire": following.isoformat() if following else None,
    }
    if fires:
        row["fires"] = [fire_row(f) for f in schedule.fires.all()[:RECENT_FIRES]]
    return row


class ScheduleListView(AdminView):
    @extend_schema(
        operation_id="v1_jobs_schedules_list", responses=ScheduleRowSerializer(many=True)
    )
    def get(self, request: Request) -> Response:
        """Every schedule with its next fire (in its own time zone)."""
        found = Schedule.objects.select_related("queue")
        return Response([schedule_row(s) for s in found])

    @extend_schema(request=ScheduleSerializer, responses={201: dict})
    def post(self, request: Request) -> Response:
        form = ScheduleSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        schedule = Schedule(created_by=request.user if request.user.is_authenticated else None)
        schedules.save(schedule, _changes(form.validated_data))
        return Response(schedule_row(schedule, fires=True), status=status.HTTP_201_CREATED)


class ScheduleDetailView(AdminView):
    @extend_schema(responses=dict)
    def get(self, request: Request, schedule_id: int) -> Response:
        """The schedule, its next fire and its last fires with what they started."""
        return Response(schedule_row(schedules.get_schedule(schedule_id), fires=True))

    @extend_schema(request=ScheduleSerializer, responses=dict)
    def patch(self, request: Request, schedule_id: int) -> Response:
        schedule = schedules.get_schedule(schedule_id)
        form = ScheduleSerializer(data=request.data, partial=True)
        form.is_valid(raise_exception=True)
        try:
            schedules.save(schedule, _changes(form.validated_data))
        except Exception:
            schedule.refresh_from_db()  # nothing was saved; do not answer with the refused values
            raise
        return Response(schedule_row(schedule, fires=True))

    @extend_schema(responses={204: None})
    def delete(self, request: Request, schedule_id: int) -> Response:
        schedules.delete(schedules.get_schedule(schedule_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ScheduleRunNowView(AdminView):
    @extend_schema(request=None, responses={201: dict})
    def post(self, request: Request, schedule_id: int) -> Response:
        """Fire once, now (enabled or not)."""
        fire = schedules.run_now(schedules.get_schedule(schedule_id))
        return Response(fire_row(fire), status=status.HTTP_201_CREATED)
