from django.urls import path

from queues.api import replay_views as views

urlpatterns = [
    path("", views.ReplayListView.as_view(), name="api-replays"),
    path("preview/", views.ReplayPreviewView.as_view(), name="api-replay-preview"),
    path("<int:replay_id>/", views.ReplayDetailView.as_view(), name="api-replay"),
    path("<int:replay_id>/cancel/", views.ReplayCancelView.as_view(), name="api-replay-cancel"),
]
