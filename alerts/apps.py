from django.apps import AppConfig


class AlertsConfig(AppConfig):
    """Alert rules admins define, the evaluator that opens and resolves alerts, and their
    notifications. Above jobs (a failed job run is a condition), below the back-office."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "alerts"
    verbose_name = "Alerts"

    def ready(self) -> None:
        from alerts import signals
        from queues import pausing

        pausing.queue_paused.connect(signals.queue_paused, dispatch_uid="alerts.queue_paused")
        pausing.queue_resumed.connect(signals.queue_resumed, dispatch_uid="alerts.queue_resumed")
