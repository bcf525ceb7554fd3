"""The operations pages (workers, handlers, health, live log, alerts) and the lifecycle
stream. Included at ``""`` by ``quaymaster.urls``; the ASGI streams process serves the same
URLconf, so ``streams/lifecycle`` answers on both ports."""

from django.urls import path

from backoffice import streams
from backoffice.pages import alerts, handlers, operations

app_name = "operations"

urlpatterns = [
    path("workers/", operations.worker_list, name="workers"),
    path("handlers/", handlers.handler_list, name="handlers"),
    path("health/", operations.health, name="health"),
    path("live/", operations.live_log, name="live"),
    path("alerts/", alerts.alert_list, name="alerts"),
    path("alerts/<int:alert_id>/", alerts.alert_detail, name="alert"),
    path("alerts/rules/new", alerts.rule_create, name="alert-rule-new"),
    path("alerts/rules/<int:rule_id>/", alerts.rule_edit, name="alert-rule"),
    path("alerts/rules/<int:rule_id>/delete", alerts.rule_delete, name="alert-rule-delete"),
    path("streams/lifecycle", streams.lifecycle, name="stream-lifecycle"),
]
