"""``manage.py evaluate_alerts [--once]``: measure every enabled alert rule; open, re-notify and
resolve alerts. Without ``--once`` it keeps the evaluator lease and runs a pass every
``--interval`` seconds until SIGTERM; a second one (or the scheduler's beat task) waits its turn:
only the lease's holder evaluates. ``--once`` exits 0 after its pass, 1 when another evaluator
held the lease."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections

from alerts import evaluator, lease
from quaymaster.processes import stop_event


class Command(BaseCommand):
    help = "Evaluate the alert rules once (--once) or every --interval seconds."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="One pass, then exit.")
        parser.add_argument(
            "--interval",
            type=float,
            default=float(getattr(settings, "QUAYMASTER_ALERT_EVALUATE_SECONDS", 30.0)),
            help="Seconds between two passes (default QUAYMASTER_ALERT_EVALUATE_SECONDS).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        interval = max(1.0, float(options["interval"]))
        if options["once"]:
            outcome = evaluator.evaluate()
            self.stdout.write(f"alerts: {outcome}")
            if not outcome.evaluated:
                raise CommandError("Another evaluator holds the lease.")
            return
        stopping = stop_event()
        owner = lease.new_owner()
        ttl = timedelta(seconds=max(60.0, 3 * interval))
        self.stdout.write(f"alerts: evaluating every {interval:g} s as {owner}")
        self.stdout.flush()
        try:
            while not stopping.is_set():
                try:
                    outcome = evaluator.evaluate(owner=owner, ttl=ttl)
                except Exception as exc:  # a database outage: try again next time
                    self.stderr.write(f"alerts: the pass failed: {exc}")
                    close_old_connections()
                else:
                    if outcome.evaluated and (outcome.opened or outcome.resolved):
                        self.stdout.write(f"alerts: {outcome}")
                        self.stdout.flush()
                stopping.wait(interval)
        finally:
            lease.release(owner)
