"""`make run` as a newcomer sees it: one line per step, then the Procfile's processes, and the
login line only once the web process answers /healthz (here held back by keeping its port busy
for a moment)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_processes import free_port, get
from tests.make.output import LineReader

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent

pytestmark = pytest.mark.e2e

NOT_INHERITED = ("DATABASE_URL", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "VERBOSE", "READY_TIMEOUT")


def test_make_run_prints_the_login_line_only_once_the_web_process_answers(tmp_path: Path):
    web, streams = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    env.update(
        QUAYMASTER_VAR_DIR=str(tmp_path),
        QUAYMASTER_WEB_BIND=f"127.0.0.1:{web}",
        QUAYMASTER_STREAMS_PORT=str(streams),
        CELERY_BROKER_URL="filesystem://",
    )
    held = socket.socket()  # bound, not listening: gunicorn cannot bind it and retries each second
    held.bind(("127.0.0.1", web))
    # -o: the virtualenv this suite runs in is the installed one (its install is not under test).
    make = subprocess.Popen(
        ["make", "--no-print-directory", f"VENV={VENV}", "-o", f"{VENV}/.installed-stamp", "run"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = LineReader(make)
    try:
        assert "Migrating the database… done (" in output.until("Migrating the database…", 120)
        assert "Loading demo data… done (" in output.until("Loading demo data…", 120)
        output.until("Starting web, streams, relay, worker, scheduler…", 30)

        output.until("Connection in use", 120)  # the web process is up but cannot listen yet
        assert "Quaymaster is at" not in output.text
        held.close()

        line = output.until("Quaymaster is at", 120)
        status, _ = get(f"http://127.0.0.1:{web}/healthz")
        assert status == 200, "the login line came before /healthz answered"
        password = (tmp_path / "admin_password").read_text().strip()
        assert f"Quaymaster is at http://127.0.0.1:{web}/ " in line
        assert f"log in as 'admin', password {password!r}" in line
        assert output.text.index(f"Listening at: http://127.0.0.1:{web}") < output.text.index(line)
    finally:
        held.close()
        os.killpg(make.pid, signal.SIGINT)  # as Ctrl-C in the terminal
        rest = output.rest(60)
        make.wait(30)

    assert rest.count("Quaymaster is at") == 1
    assert "did not answer" not in rest
    # The steps' own output is in the log, not on the screen.
    assert "Applying contenttypes.0001_initial" not in rest
    kept = (tmp_path / "log" / "setup.log").read_text()
    assert "Applying contenttypes.0001_initial... OK" in kept
    assert "Loading demo data…" in kept
    for name in ("web", "streams", "relay", "worker", "scheduler"):
        assert f"{name}.1 stopped" in rest, f"{name} did not stop on Ctrl-C:\n{rest}"
