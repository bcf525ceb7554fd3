"""Print where to log in once the web process answers ``/healthz``, not before.

    manage.py wait_ready [--url URL] [--timeout 60]
    manage.py wait_ready [--url URL] [--timeout 60] -- honcho --procfile platform/Procfile start

Alone, it polls ``URL/healthz`` until it answers 200, prints the login line and exits 0, or
says that it did not answer within the deadline and exits 1. Given a command (what `make run`
does, with honcho and the Procfile), it starts the command, prints the login line once the web
process answers (or, past the deadline, says where to look and keeps waiting), passes SIGINT and
SIGTERM on to the command and exits with its status.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backoffice.management.commands.bootstrap_demo import login_line

POLL_SECONDS = 0.5
REQUEST_TIMEOUT = 2.0


def default_url() -> str:
    """The web process's address, from QUAYMASTER_WEB_BIND as platform/gunicorn.conf.py reads
    it (a wildcard host is reached on loopback)."""
    bind = os.environ.get("QUAYMASTER_WEB_BIND", "127.0.0.1:8000").split(",")[0].strip()
    host, _, port = bind.rpartition(":")
    if bind.startswith("unix:") or not port.isdigit():
        return "http://127.0.0.1:8000/"
    if host in ("", "0.0.0.0", "[::]", "::"):
        host = "127.0.0.1"
    return f"http://{host}:{port}/"


def listening(url: str) -> bool:
    """Does something accept connections at ``url``'s host and port already?"""
    parts = urllib.parse.urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), 1):
            return True
    except OSError:
        return False


def answers(healthz: str) -> bool:
    try:
        with urllib.request.urlopen(healthz, timeout=REQUEST_TIMEOUT) as response:
            return int(response.status) == 200
    except (OSError, ValueError):  # refused, reset, timed out, or an HTTP error status
        return False


class Command(BaseCommand):
    help = "Print where to log in once the web process answers /healthz (around a command)."
    # A launcher: the processes it waits for run the checks (and report what they find).
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--url", default="", help="The web process's URL (default: from QUAYMASTER_WEB_BIND)."
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=60.0,
            help="Seconds to wait for /healthz before saying it did not answer (default 60).",
        )
        parser.add_argument(
            "command", nargs="*", help="A command to run meanwhile (after --), e.g. honcho start."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        url = options["url"] or default_url()
        url = url if url.endswith("/") else url + "/"
        healthz = url + "healthz"
        timeout = float(options["timeout"])
        command = list(options["command"])
        if not command:
            if not self._wait(healthz, timeout, lambda: False):
                raise CommandError(f"{healthz} did not answer within {timeout:g} s.")
            self._announce(url)
            return
        raise SystemExit(self._run(command, url, healthz, timeout))

    def _run(self, command: list[str], url: str, healthz: str, timeout: float) -> int:
        if listening(url):
            # The web process could not listen there, and the login line would point elsewhere.
            raise CommandError(
                f"Something already listens at {url} (an earlier `make run` still running?): "
                "stop it, or give this one another address with "
                "QUAYMASTER_WEB_BIND=127.0.0.1:8010."
            )
        try:
            child = subprocess.Popen(command)
        except OSError as exc:
            raise CommandError(f"{command[0]}: {exc.strerror}") from exc

        def forward(signum: int, frame: FrameType | None) -> None:
            # Ctrl-C reaches the command from the terminal as well: honcho stops once either way.
            if child.poll() is None:
                child.send_signal(signum)

        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, forward)

        def ended() -> bool:
            return child.poll() is not None

        if self._wait(healthz, timeout, ended):
            self._announce(url)
        elif not ended():
            self.stderr.write(
                f"\nQuaymaster's web process did not answer {healthz} within {timeout:g} s: "
                "its output is in the lines marked 'web.1' above. The login line follows if it "
                "answers.\n"
            )
            self.stderr.flush()
            if self._wait(healthz, None, ended):
                self._announce(url)
        returncode = child.wait()
        return 128 - returncode if returncode < 0 else returncode

    def _wait(self, healthz: str, timeout: float | None, ended: Callable[[], bool]) -> bool:
        """Poll until /healthz answers 200 (True), or the deadline passes or ``ended()`` (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not ended():
            if answers(healthz):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(POLL_SECONDS)  # the next look at a process that is still starting
        return False

    def _announce(self, url: str) -> None:
        line = login_line(url)
        self.stdout.write("\n" + self.style.SUCCESS(f"==> {line}") + "\n\n")
        self.stdout.flush()
