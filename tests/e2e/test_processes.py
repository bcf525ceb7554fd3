"""The Procfile's processes start together on the embedded default, as `make run` does."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_for(url: str, deadline: float, process: subprocess.Popen[str]) -> tuple[int, str]:
    while time.monotonic() < deadline:
        assert process.poll() is None, "honcho exited before the platform answered"
        try:
            return get(url)
        except OSError:  # not listening yet, or still booting (URLError, timeouts)
            time.sleep(0.2)  # polling a port that is not open yet
    raise AssertionError(f"{url} did not answer in time")


def test_the_procfile_serves_login_healthz_and_streams_on_sqlite(tmp_path: Path):
    web, streams = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        QUAYMASTER_VAR_DIR=str(tmp_path),
        QUAYMASTER_WEB_BIND=f"127.0.0.1:{web}",
        QUAYMASTER_STREAMS_PORT=str(streams),
        CELERY_BROKER_URL="filesystem://",
        PATH=f"{BIN}:{env['PATH']}",
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, env=env, check=True
    )
    honcho = subprocess.Popen(
        [str(BIN / "honcho"), "--procfile", "platform/Procfile", "--app-root", ".", "start"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        status, body = wait_for(f"http://127.0.0.1:{web}/healthz", deadline, honcho)
        assert status == 200
        assert body == '{"status": "ok"}'
        status, body = get(f"http://127.0.0.1:{web}/readyz")
        assert status == 200, body  # ok, or degraded until the workers have started
        assert '"name": "database", "status": "ok"' in body

        status, body = get(f"http://127.0.0.1:{web}/login/")
        assert status == 200
        assert "Log in to Quaymaster" in body

        status, _ = wait_for(f"http://127.0.0.1:{streams}/streams/heartbeat", deadline, honcho)
        assert status == 401, "the ASGI streams process answers (and needs a login)"
    finally:
        os.killpg(honcho.pid, signal.SIGTERM)
        output, _ = honcho.communicate(timeout=30)
    for name in ("web", "streams", "relay", "worker", "scheduler"):
        assert f"{name}." in output, f"process {name} did not start:\n{output}"
