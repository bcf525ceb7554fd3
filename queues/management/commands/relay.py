"""``manage.py relay``: publish committed outbox rows to their brokers until SIGTERM.

Several relays may run; each queue is published by one of them at a time (see
``queues/relay/``). SIGTERM finishes the batch in hand, then exits. ``--metrics-port``
serves its Prometheus metrics and samples the outbox backlog, the engines' depth and lag and
the open job runs every ``QUAYMASTER_METRICS_SAMPLE_SECONDS`` (see ``quaymaster.metrics``).
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from quaymaster import metrics
from quaymaster.processes import stop_event
from queues.relay import Relay


class Command(BaseCommand):
    help = "Publish pending outbox rows to their queues."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument(
            "--lease-seconds",
            type=float,
            default=15.0,
            help="How long a queue stays with this relay without renewal: the takeover delay "
            "on SQLite; on PostgreSQL a queue is held by an advisory lock that ends with the "
            "relay's session, taken over at the next poll round, and this is only shown (unless "
            "--no-session-locks).",
        )
        parser.add_argument(
            "--poll-seconds",
            type=float,
            default=0.5,
            help="Polling interval (the only wake-up on SQLite or with --no-listen; a fallback "
            "on PostgreSQL).",
        )
        parser.add_argument(
            "--no-session-locks",
            action="store_false",
            dest="session_locks",
            help="Hold queues by the lease's expiry alone on PostgreSQL too (a killed relay's "
            "queues then wait --lease-seconds), e.g. behind a pooler in transaction mode, where "
            "a session lock would not last.",
        )
        metrics.add_metrics_argument(parser)
        parser.add_argument(
            "--no-listen",
            action="store_false",
            dest="listen",
            help="Do not LISTEN for the outbox's NOTIFY on PostgreSQL: poll every --poll-seconds "
            "only (e.g. behind a connection pooler that cannot hold a LISTEN session).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        logging.getLogger("queues.relay").setLevel(logging.INFO)
        relay = Relay(
            batch_size=options["batch_size"],
            lease_seconds=options["lease_seconds"],
            poll_seconds=options["poll_seconds"],
            listen=options["listen"],
            session_locks=options["session_locks"],
        )
        if options["metrics_port"] is not None:
            metrics.start_metrics_server(options["metrics_port"])
            metrics.RELAY_INFO.labels(relay.owner).set(1)
            metrics.Sampling().start()
        self.stdout.write(f"relay {relay.owner}: publishing the outbox")
        self.stdout.flush()
        relay.run(stop_event())
