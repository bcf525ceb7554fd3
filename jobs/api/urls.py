from django.urls import path

from jobs.api import schedule_views, views

urlpatterns = [
    path("", views.JobListView.as_view(), name="api-jobs"),
    path("runs/", views.RunListView.as_view(), name="api-job-runs"),
    path("schedules/", schedule_views.ScheduleListView.as_view(), name="api-schedules"),
    path(
        "schedules/<int:schedule_id>",
        schedule_views.ScheduleDetailView.as_view(),
        name="api-schedule",
    ),
    path(
        "schedules/<int:schedule_id>/run-now",
        schedule_views.ScheduleRunNowView.as_view(),
        name="api-schedule-run-now",
    ),
    path("runs/<str:run_id>", views.RunDetailView.as_view(), name="api-job-run"),
    path("runs/<str:run_id>/instances", views.RunInstancesView.as_view(), name="api-job-instances"),
    path("runs/<str:run_id>/results", views.RunResultsView.as_view(), name="api-job-results"),
    *[
        path(
            f"runs/<str:run_id>/{action}",
            views.RunActionView.as_view(action=action.replace("-", "_")),
            name=f"api-job-run-{action}",
        )
        for action in ("pause", "resume", "cancel", "retry-failed")
    ],
]
