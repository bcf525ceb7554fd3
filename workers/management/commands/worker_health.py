"""``manage.py worker_health <queue>``: exit 0 when a worker for the queue heartbeated
recently (within three heartbeat intervals), 1 otherwise: a liveness probe for orchestrators."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from queues.models import Queue
from queues.services import resolve_queue
from workers.models import WorkerProcess, lost_after


class Command(BaseCommand):
    help = "Exit 0 if a worker for the queue heartbeated recently, 1 otherwise."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("queue", help="Queue name or id.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            queue = resolve_queue(options["queue"])
        except Queue.DoesNotExist:
            raise CommandError(f"No queue {options['queue']!r}.", returncode=1) from None
        alive = WorkerProcess.objects.alive().filter(queue=queue).order_by("-heartbeat_at")
        latest = alive.first()
        if latest is None:
            raise CommandError(
                f"No worker of queue {queue.name} heartbeated in the last "
                f"{lost_after().total_seconds():g}s.",
                returncode=1,
            )
        self.stdout.write(
            f"ok: {alive.count()} worker(s) of queue {queue.name}; latest heartbeat "
            f"{latest.heartbeat_at.isoformat()} from {latest.host}:{latest.pid}"
        )
