"""The jobs pages and a run's progress stream. Included at ``""`` by ``quaymaster.urls``; the
ASGI streams process serves the same URLconf, so ``streams/jobs/<run>`` answers on both."""

from django.urls import path

from backoffice import streams
from backoffice.pages import jobs, schedules

app_name = "jobs"

urlpatterns = [
    path("jobs/", jobs.job_list, name="jobs"),
    path("jobs/runs/", jobs.run_list, name="runs"),
    path("jobs/runs/<uuid:run_id>/", jobs.run_detail, name="run"),
    path("jobs/runs/<uuid:run_id>/results.<str:fmt>", jobs.run_results, name="run-results"),
    path(
        "jobs/runs/<uuid:run_id>/instances/<uuid:instance_id>/",
        jobs.instance_detail,
        name="instance",
    ),
    path("jobs/runs/<uuid:run_id>/<str:action>", jobs.run_action, name="run-action"),
    path("schedules/", schedules.schedule_list, name="schedules"),
    path("schedules/new", schedules.schedule_create, name="schedule-new"),
    path("schedules/<int:schedule_id>/", schedules.schedule_detail, name="schedule"),
    path("schedules/<int:schedule_id>/toggle", schedules.schedule_toggle, name="schedule-toggle"),
    path(
        "schedules/<int:schedule_id>/run-now",
        schedules.schedule_run_now,
        name="schedule-run-now",
    ),
    path("schedules/<int:schedule_id>/delete", schedules.schedule_delete, name="schedule-delete"),
    path("streams/jobs/<uuid:run_id>", streams.job_progress, name="stream"),
]
