from django.apps import AppConfig


class QueuesConfig(AppConfig):
    name = "queues"
    verbose_name = "Queues"

    def ready(self) -> None:
        """Turn ZStorage's record events into outbox rows, inside the write's transaction; give
        ``Queue`` its backend classes (which import the models, so not the other way round).
        (A link or queue change renews its tables' schema tokens by trigger, migration 0005.)"""
        from queues.backends import backend_class
        from queues.models.queue import use_engines
        from queues.outbox import on_record_changed
        from zstorage.events import record_changed

        use_engines(backend_class)
        record_changed.connect(on_record_changed, dispatch_uid="queues.outbox")

        from quaymaster.metrics import register_sampler
        from queues.sampling import sample_engines, sample_outbox

        register_sampler("outbox", sample_outbox)
        register_sampler("engines", sample_engines)
