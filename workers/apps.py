from django.apps import AppConfig


class WorkersConfig(AppConfig):
    name = "workers"
    verbose_name = "Workers"

    def ready(self) -> None:
        # The publish API refuses a handler no module here registers (queues sits below this
        # app, so it is told how to ask). The handler modules load at the first question.
        from queues.services import know_handlers
        from workers.registry import registered_names

        know_handlers(registered_names)
