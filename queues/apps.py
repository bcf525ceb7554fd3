from django.apps import AppConfig


class QueuesConfig(AppConfig):
    name = "queues"
    verbose_name = "Queues"

    def ready(self) -> None:
        """Turn ZStorage's record events into outbox rows, inside the write's transaction."""
        from queues.outbox import on_record_changed
        from zstorage.events import record_changed

        record_changed.connect(on_record_changed, dispatch_uid="queues.outbox")
