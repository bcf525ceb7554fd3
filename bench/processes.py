"""The processes under test: gunicorn and the relay started as children with the bench's
environment, their logs under ``var/bench/``, and the memory (RSS) of a process tree.

A child is stopped with SIGTERM (and SIGKILL if it does not exit in time), so what it does at
shutdown — a relay finishing its batch, gunicorn draining — is part of what runs.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bench.harness import ROOT
from bench.options import BenchError

LOGS = ROOT / "var" / "bench"
GUNICORN_CONF = ROOT / "platform" / "gunicorn.conf.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses.
        ppid = int(text[text.rindex(")") + 2 :].split()[1])
        tree.setdefault(ppid, []).append(int(text.split(" ", 1)[0]))
    return tree


def vm_rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_mib(pid: int) -> float:
    """VmRSS of a process and all its descendants (gunicorn: the master and its workers).
    Pages shared after fork are counted once per process, as VmRSS does."""
    tree = _children()
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += vm_rss_kib(current)
        todo.extend(tree.get(current, []))
    return total / 1024


class RssSampler:
    """Samples a process tree's RSS every ``interval`` seconds in a thread; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid, self.interval = pid, interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(tree_rss_mib(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak(self) -> float:
        return max(self.samples) if self.samples else 0.0


def stop_process(process: subprocess.Popen[Any], timeout: float = 30) -> int | None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    return process.returncode


@dataclass
class Gunicorn:
    """``gunicorn <app> --config platform/gunicorn.conf.py --workers N`` on a free port."""

    env: dict[str, str]
    name: str
    app: str = "quaymaster.wsgi"
    workers: int = 2
    config: Path = GUNICORN_CONF
    ready_path: str = "/healthz"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None

    def start(self, timeout: float = 60) -> Gunicorn:
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop())
        bind = f"127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                self.app,
                "--config",
                str(self.config),
                "--workers",
                str(self.workers),
                "--bind",
                bind,
            ],
            cwd=ROOT,
            env={**self.env, "QUAYMASTER_WEB_BIND": bind, "WEB_CONCURRENCY": str(self.workers)},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"gunicorn {self.name} exited; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.url(self.ready_path), timeout=5) as answer:
                    answer.read()
                    break
            except urllib.error.HTTPError:
                break  # it answers: any status will do
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        else:
            raise BenchError(f"gunicorn {self.name} did not answer within {timeout:.0f} s")
        self.wait_for_workers()
        return self

    def wait_for_workers(self, timeout: float = 30) -> None:
        """The master answers once one worker runs; wait until all have booted."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(_children().get(self.process.pid, [])) >= self.workers:
                return
            time.sleep(0.1)

    @property
    def log_path(self) -> Path:
        return LOGS / f"{self.name}-{self.port}.log"

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def rss_mib(self) -> float:
        return tree_rss_mib(self.pid)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None
        if self.log is not None:
            self.log.close()
            self.log = None

    def __enter__(self) -> Gunicorn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RelayProcess:
    """``manage.py relay`` against the bench database, logging to ``var/bench/<name>.log``;
    ready once it printed its start line."""

    READY = "publishing the outbox"

    def __init__(self, env: dict[str, str], *args: str, name: str = "relay") -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "manage.py", "relay", *args]
        self.name = name
        self.log = open(LOGS / f"{self.name}.log", "ab")  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=self.log, text=True
        )
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if self.READY in line:
                self._ready.set()

    def wait_ready(self, timeout: float = 60) -> RelayProcess:
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"the relay did not start; see {LOGS / self.name}.log")
        return self

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_mib(self) -> float:
        return tree_rss_mib(self.pid)

    def stop(self) -> int | None:
        code = stop_process(self.process)
        self.log.close()
        return code

    def __enter__(self) -> RelayProcess:
        return self.wait_ready()

    def __exit__(self, *exc: object) -> None:
        self.stop()
