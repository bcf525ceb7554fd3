from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.api import MeView
from accounts.audit_api import AuditListView
from quaymaster.health import healthz, readyz
from quaymaster.metrics_views import metrics_view
from workers.dry_run_api import DeadLetterDryRunView
from workers.trace_api import MessageTraceView, RecordTraceView

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("django-admin/", admin.site.urls),
    path("api/v1/me", MeView.as_view(), name="api-me"),
    path("api/v1/audit/", AuditListView.as_view(), name="api-audit"),
    path("api/v1/trace/messages/<str:message_id>", MessageTraceView.as_view(), name="api-trace"),
    path(
        "api/v1/zstorage/tables/<slug:slug>/records/<int:record_id>/trace",
        RecordTraceView.as_view(),
        name="api-record-trace",
    ),
    path("api/v1/zstorage/", include("zstorage.urls")),
    path("api/v1/zstorage/", include("queues.api.publish_urls")),
    path(
        "api/v1/queues/<int:queue_id>/dead-letters/<str:message_id>/dry-run",
        DeadLetterDryRunView.as_view(),
        name="api-dead-letter-dry-run",
    ),
    path("api/v1/queues/", include("queues.api.urls")),
    path("api/v1/replays/", include("queues.api.replay_urls")),
    path("api/v1/jobs/", include("jobs.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("backoffice.urls_operations")),
    path("", include("backoffice.urls_jobs")),
    path("", include("backoffice.urls")),
]
