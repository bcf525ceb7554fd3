"""The operations pages (workers, handlers, live log) and the lifecycle stream. Included at
``""`` by ``quaymaster.urls``; the ASGI streams process serves the same URLconf, so
``streams/lifecycle`` answers on both ports."""

from django.urls import path

from backoffice import streams
from backoffice.pages import handlers, operations

app_name = "operations"

urlpatterns = [
    path("workers/", operations.worker_list, name="workers"),
    path("handlers/", handlers.handler_list, name="handlers"),
    path("health/", operations.health, name="health"),
    path("live/", operations.live_log, name="live"),
    path("streams/lifecycle", streams.lifecycle, name="stream-lifecycle"),
]
