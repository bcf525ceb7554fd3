from django.apps import AppConfig


class JobsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "jobs"
    verbose_name = "Jobs"

    def ready(self) -> None:
        # Jobs are for admins: a publisher may not start one, or run an instance, by naming
        # these handlers in a message, unless a queue's allowed handlers list them.
        from jobs.dispatch import INSTANCE_HANDLER
        from queues.services import reserve_handler

        reserve_handler("start_job", "starts jobs")
        reserve_handler(INSTANCE_HANDLER, "runs a job's instances")

        from jobs.sampling import sample_open_runs
        from quaymaster.metrics import register_sampler

        register_sampler("jobs", sample_open_runs)
