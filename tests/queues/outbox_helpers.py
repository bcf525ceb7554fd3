"""Builders for the outbox tests: a table linked to a queue, and relay subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.db import connection

from queues.models import OutboxMessage, OutboxState, Queue, QueueLink
from zstorage import schema
from zstorage.models import Table

ROOT = Path(__file__).resolve().parents[2]


def linked_table(queue: Queue, slug: str = "orders", **link: Any) -> Table:
    table = schema.create_table(slug.title(), slug)
    schema.add_field(table, name="Number", key="number", type="text", required=True)
    schema.add_field(table, name="Total", key="total", type="decimal")
    schema.add_field(
        table, name="Status", key="status", type="choice", options={"choices": ["new", "paid"]}
    )
    QueueLink.objects.create(
        table=table, queue=queue, handler=link.pop("handler", "on_order"), **link
    )
    return table


def pending(queue: Queue) -> int:
    return OutboxMessage.objects.filter(queue=queue, state=OutboxState.PENDING).count()


def test_database_url() -> str:
    """The test database as a URL, for a child process (PostgreSQL only)."""
    s = connection.settings_dict
    return f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


class RelayProcess:
    """``manage.py relay`` in a child process, against the test database."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "DATABASE_URL": test_database_url()}
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "relay", *args],
            cwd=ROOT,
            env=env,
            # Not a pipe nobody reads: the relay logs a line per batch, which would fill it and
            # block the relay.
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int:
        """SIGTERM, and the exit code once it has finished its batch."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)
