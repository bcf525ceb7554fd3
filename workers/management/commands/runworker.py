"""``manage.py runworker <queue>``: serve one queue with up to ``--concurrency`` handlers at
once until SIGTERM (or SIGINT), then drain and exit 0. Exits 1 when the worker fails."""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from quaymaster import metrics
from quaymaster.processes import stop_event
from queues.backends.kafka.membership import INSTANCE_ENV
from queues.models import Queue
from queues.services import resolve_queue
from workers.options import WorkerOptions
from workers.registry import discover
from workers.runtime import Worker

DEFAULTS = WorkerOptions()


class Command(BaseCommand):
    help = "Run a worker for one queue (by name or id)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("queue", help="Queue name or id.")
        parser.add_argument(
            "--concurrency", type=int, default=DEFAULTS.concurrency, help="Handlers at once."
        )
        parser.add_argument(
            "--drain-seconds",
            type=float,
            default=DEFAULTS.drain_seconds,
            help="On SIGTERM, how long in-flight handlers may take to finish.",
        )
        parser.add_argument(
            "--poll-seconds",
            type=float,
            default=DEFAULTS.poll_seconds,
            help="How long an idle fetch waits for messages (SQS long polling, up to 20).",
        )
        parser.add_argument(
            "--retry-base-delay",
            type=float,
            default=DEFAULTS.retry_base_delay,
            help="Backoff of the first retry, in seconds (doubles each attempt).",
        )
        parser.add_argument(
            "--retry-max-delay",
            type=float,
            default=DEFAULTS.retry_max_delay,
            help="Longest backoff between two attempts, in seconds.",
        )
        parser.add_argument(
            "--handlers-module",
            action="append",
            default=[],
            metavar="MODULE",
            help="Import this module for its handlers (repeatable), besides the apps' "
            "handlers modules and QUAYMASTER_HANDLER_MODULES.",
        )
        parser.add_argument(
            "--group-instance-id",
            default=None,
            metavar="ID",
            help="Kafka: join the consumer group as this static member (unique among the "
            "group's live members, the same across restarts: a restart then takes the "
            "partitions back without a rebalance). runworkers sets one per slot.",
        )
        metrics.add_metrics_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        stopping = stop_event()
        try:
            queue = resolve_queue(options["queue"])
        except Queue.DoesNotExist:
            raise CommandError(f"No queue {options['queue']!r}.") from None
        if not queue.enabled:
            self.stderr.write(f"Queue {queue.name} is disabled; serving it anyway as asked.")
        if queue.paused_at is not None:
            self.stderr.write(
                f"Queue {queue.name} is paused: nothing is fetched until an admin resumes it."
            )
        if options["group_instance_id"]:
            os.environ[INSTANCE_ENV] = options["group_instance_id"]
        registry = discover(options["handlers_module"])
        worker = Worker(
            queue,
            registry=registry,
            options=WorkerOptions(
                concurrency=options["concurrency"],
                drain_seconds=options["drain_seconds"],
                poll_seconds=options["poll_seconds"],
                retry_base_delay=options["retry_base_delay"],
                retry_max_delay=options["retry_max_delay"],
            ),
        )
        if options["metrics_port"] is not None:
            metrics.start_metrics_server(options["metrics_port"])
        worker.start()
        self.stdout.write(
            f"worker: serving {queue.type} queue {queue.name} with concurrency "
            f"{options['concurrency']}; handlers: {', '.join(registry.labels()) or 'none'}"
        )
        self.stdout.flush()
        while not (stopping.wait(0.2) or worker.finished.is_set()):
            pass
        if stopping.is_set():
            self.stdout.write(f"worker: draining queue {queue.name}")
            self.stdout.flush()
        worker.stop()
        if worker.error is not None:
            raise CommandError(f"The worker of queue {queue.name} failed: {worker.error}")
        self.stdout.write(f"worker: queue {queue.name} stopped")
