"""``manage.py runworkers``: a ``runworker`` child per enabled queue, kept running.

Follows the Queue table (queues enabled, disabled, added, removed or changed) without a
restart, restarts crashed children with backoff, and on SIGTERM stops every child (each one
drains) before exiting 0. See ``workers.supervisor``.

``--metrics-port`` serves the children's metrics merged on one port: the children write
them into a multiprocess directory (``PROMETHEUS_MULTIPROC_DIR`` if set, else a fresh one
under ``var/prometheus/``, removed at exit) that this process reads at each scrape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from quaymaster import metrics
from quaymaster.processes import stop_event
from workers.supervisor import Supervisor, SupervisorOptions

DEFAULTS = SupervisorOptions()


class Command(BaseCommand):
    help = "Run a worker process for every enabled queue."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--processes-per-queue", type=int, default=DEFAULTS.processes_per_queue)
        parser.add_argument(
            "--concurrency", type=int, default=None, help="Per worker process (default 10)."
        )
        parser.add_argument("--drain-seconds", type=float, default=DEFAULTS.drain_seconds)
        parser.add_argument(
            "--refresh-seconds",
            type=float,
            default=DEFAULTS.refresh_seconds,
            help="How often the queue list is read again.",
        )
        parser.add_argument(
            "--restart-delay",
            type=float,
            default=DEFAULTS.restart_delay,
            help="First restart delay of a crashed worker (doubles per crash).",
        )
        parser.add_argument("--max-restart-delay", type=float, default=DEFAULTS.max_restart_delay)
        parser.add_argument(
            "--handlers-module",
            action="append",
            default=[],
            metavar="MODULE",
            help="Passed to every runworker (repeatable).",
        )
        parser.add_argument(
            "--instance-name",
            default=DEFAULTS.instance_name,
            help="This supervisor's part of its Kafka workers' static group member ids (default: "
            "host name and pid). A name that outlives the process (a pod's) lets a restarted "
            "machine take its partitions back; supervisors serving the same queues at once need "
            "different names.",
        )
        metrics.add_metrics_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        stopping = stop_event()
        if options["processes_per_queue"] < 1:
            options["processes_per_queue"] = 1
        worker_args: list[str] = []
        for module in options["handlers_module"]:
            worker_args += ["--handlers-module", module]
        supervisor = Supervisor(
            SupervisorOptions(
                processes_per_queue=options["processes_per_queue"],
                concurrency=options["concurrency"],
                drain_seconds=options["drain_seconds"],
                refresh_seconds=options["refresh_seconds"],
                restart_delay=options["restart_delay"],
                max_restart_delay=options["max_restart_delay"],
                worker_args=worker_args,
                instance_name=options["instance_name"],
            )
        )
        if options["metrics_port"] is not None:
            if metrics.multiprocess_dir() is None:  # the children inherit it
                metrics.own_multiprocess_dir(Path(settings.VAR_DIR) / "prometheus", "runworkers")
            metrics.start_metrics_server(options["metrics_port"])
        self.stdout.write("workers: supervising a worker per enabled queue")
        self.stdout.flush()
        supervisor.run(stopping)
        self.stdout.write("workers: every worker stopped")
