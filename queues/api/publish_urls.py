from django.urls import path

from queues.api import publish_views

urlpatterns = [
    path("queue/<int:queue_id>/publish", publish_views.PublishByIdView.as_view(), name="publish"),
    path(
        "queue/<int:queue_id>/publish/batch",
        publish_views.PublishBatchByIdView.as_view(),
        name="publish-batch",
    ),
    path(
        "queue/a/<str:queue_name>/publish",
        publish_views.PublishByNameView.as_view(),
        name="publish-by-name",
    ),
    path(
        "queue/a/<str:queue_name>/publish/batch",
        publish_views.PublishBatchByNameView.as_view(),
        name="publish-batch-by-name",
    ),
]
