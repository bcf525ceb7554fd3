"""``manage.py start_job NAME --params FILE.json|FILE.csv [--parallelism N] [--priority P]
[--queue Q]``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.errors import JobError
from jobs.models import Trigger
from jobs.params import parse_params_file
from jobs.runs import start


class Command(BaseCommand):
    help = "Start a run of a registered job over a JSON or CSV file of parameters."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("job", help="The registered job's name.")
        parser.add_argument(
            "--params", required=True, type=Path,
            help="A .json file (a list of objects) or a .csv file (one instance per row).",
        )  # fmt: skip
        parser.add_argument("--parallelism", type=int, default=10)
        parser.add_argument(
            "--priority", type=int, default=0,
            help="0 to 9, higher first, where the queue's engine has priorities.",
        )  # fmt: skip
        parser.add_argument("--queue", default=None, help="Queue name (QUAYMASTER_JOB_QUEUE).")
        parser.add_argument("--on-complete", default=None, help="Queue for job.completed.")
        parser.add_argument("--on-complete-handler", default="log")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["params"]
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}.") from None
        try:
            run = start(
                options["job"],
                parse_params_file(path.name, content),
                parallelism=options["parallelism"],
                priority=options["priority"],
                queue=options["queue"],
                on_complete=options["on_complete"],
                on_complete_handler=options["on_complete_handler"],
                trigger=Trigger.COMMAND,
            )
        except JobError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        self.stdout.write(
            f"Started run {run.pk} of {run.job}: {run.total} "
            f"instance{'' if run.total == 1 else 's'}, {run.state}."
        )
