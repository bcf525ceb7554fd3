"""``manage.py health``: the readiness checks (``workers.readiness``) in a terminal, each with
its latency; exits 0 when ok, 1 when degraded, 2 when unavailable (for scripts and
orchestrators without HTTP)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from workers.readiness import Status, readiness

EXIT = {Status.OK: 0, Status.DEGRADED: 1, Status.UNAVAILABLE: 2}


class Command(BaseCommand):
    help = "Run the readiness checks; exit 0 ok, 1 degraded, 2 unavailable."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print the checks as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        report = readiness()
        if options["json"]:
            self.stdout.write(json.dumps(report.as_json(detail=True), indent=2))
        else:
            for check in report.checks:
                said = check.detail or check.reason or "ok"
                self.stdout.write(f"{check.name:<16} {check.status:<12} {check.ms:>8} ms  {said}")
            self.stdout.write(f"status: {report.status}")
        raise SystemExit(EXIT[report.status])
