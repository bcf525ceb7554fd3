"""``manage.py runworkers``: one worker process per enabled queue.

Placeholder until the worker runtime lands (see README, "Processes"): it starts, says so, and
idles until SIGTERM so the Procfile's process set is complete.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from quaymaster.processes import stop_event


class Command(BaseCommand):
    help = "Run a worker for every enabled queue (placeholder: idles for now)."

    def handle(self, *args: Any, **options: Any) -> None:
        stopping = stop_event()
        self.stdout.write("workers: the worker runtime is not built yet; idling until stopped")
        self.stdout.flush()
        stopping.wait()
