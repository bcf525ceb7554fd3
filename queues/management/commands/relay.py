"""``manage.py relay``: publishes committed outbox rows to their brokers.

Placeholder until the outbox lands (see README, "Processes"): it starts, says so, and idles
until SIGTERM so the Procfile's process set is complete.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from quaymaster.processes import stop_event


class Command(BaseCommand):
    help = "Publish pending outbox rows to their queues (placeholder: idles for now)."

    def handle(self, *args: Any, **options: Any) -> None:
        stopping = stop_event()
        self.stdout.write("relay: the outbox is not built yet; idling until stopped", ending="\n")
        self.stdout.flush()
        stopping.wait()
