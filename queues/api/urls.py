from rest_framework.routers import SimpleRouter

from queues.api.queue_views import QueueViewSet

router = SimpleRouter()
router.register("", QueueViewSet, basename="queue")

urlpatterns = router.urls
