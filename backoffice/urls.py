from django.urls import path

from backoffice import streams, views

app_name = "backoffice"

urlpatterns = [
    path("", views.home, name="home"),
    path("streams/heartbeat", streams.heartbeat, name="stream-heartbeat"),
]
