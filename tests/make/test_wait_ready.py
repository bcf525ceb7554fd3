"""`manage.py wait_ready`, which `make run` starts honcho with: the login line appears only once
/healthz answers 200; past the deadline it says where to look, and the line follows later."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.make.output import LineReader

ROOT = Path(__file__).resolve().parents[2]

# Stands in for honcho: serves /healthz (200) only once a line arrives on its stdin, and serves
# until it is stopped.
SLOW_WEB = """
import http.server, sys
sys.stdin.readline()
class Healthz(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Healthz).serve_forever()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_alone_it_gives_up_after_the_deadline_when_nothing_answers():
    url = f"http://127.0.0.1:{free_port()}/"

    with pytest.raises(CommandError, match=r"healthz did not answer within 0\.5 s"):
        call_command("wait_ready", url=url, timeout=0.5)


def test_around_a_command_the_login_line_comes_once_healthz_answers(tmp_path: Path):
    port = free_port()
    (tmp_path / "admin_password").write_text("demo-pass-1\n")
    env = {k: v for k, v in os.environ.items() if k != "QUAYMASTER_ADMIN_PASSWORD"}
    env.update(QUAYMASTER_VAR_DIR=str(tmp_path), QUAYMASTER_WEB_BIND=f"0.0.0.0:{port}")
    slow_web = [sys.executable, "-c", SLOW_WEB, str(port)]
    process = subprocess.Popen(
        [sys.executable, "manage.py", "wait_ready", "--timeout", "1", "--", *slow_web],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = LineReader(process)
    try:
        late = output.until("did not answer", 60)
        assert f"http://127.0.0.1:{port}/healthz within 1 s" in late
        assert "'web.1'" in late, "it says where the web process's output is"
        assert "Quaymaster is at" not in output.text

        assert process.stdin is not None
        process.stdin.write("listen now\n")  # the web process answers from here on
        process.stdin.flush()
        line = output.until("Quaymaster is at", 60)
        assert f"http://127.0.0.1:{port}/" in line
        assert "log in as 'admin', password 'demo-pass-1'" in line
    finally:
        process.send_signal(signal.SIGTERM)  # passed on to the command, which stops
        rest = output.rest(30)
        returncode = process.wait(30)
    assert returncode == 128 + signal.SIGTERM
    assert rest.count("Quaymaster is at") == 1


@pytest.mark.django_db
def test_bootstrap_demo_leaves_the_login_line_to_wait_ready_when_asked(settings, tmp_path, capsys):
    from django.contrib.auth import get_user_model

    settings.VAR_DIR = tmp_path
    settings.QUAYMASTER_ADMIN_PASSWORD = "a demo password"

    call_command("bootstrap_demo", no_login_line=True)

    assert get_user_model().objects.get(username="admin").check_password("a demo password")
    assert "Quaymaster is at" not in capsys.readouterr().out


def test_around_a_command_it_refuses_to_start_when_the_address_is_taken(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "QUAYMASTER_VAR_DIR": str(tmp_path)}
        marker = tmp_path / "started"
        started = [sys.executable, "-c", f"open({str(marker)!r}, 'w')"]

        url = f"http://127.0.0.1:{port}/"
        refused = subprocess.run(
            [sys.executable, "manage.py", "wait_ready", "--url", url, "--", *started],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert refused.returncode == 1
    assert f"Something already listens at http://127.0.0.1:{port}/" in refused.stderr
    assert "QUAYMASTER_WEB_BIND" in refused.stderr
    assert "Quaymaster is at" not in refused.stdout
    assert not marker.exists(), "the processes were started all the same"
