"""A job for the ``runworker`` processes that the end-to-end job tests start (loaded there
through ``QUAYMASTER_JOB_MODULES``; imported by the test process so it can start runs).

Each call leaves its trace in files the test reads, across processes:

- ``QM_TEST_RECORD``: one JSON line per event (``started`` when the function is entered,
  ``done`` when it returns, with the pid, instance, attempt and time), each written with one
  ``write`` in O_APPEND mode, so lines of concurrent processes never interleave (as
  ``tests/workers/process_handlers.py`` does);
- ``QM_TEST_COUNTER`` (when set): how many calls run at this moment, in every process, and the
  most that ever did, kept under an exclusive ``fcntl`` lock.

Parameters: ``n`` (the result is ``{"n": n, "square": n * n}``), ``wait_go`` (wait until the
file ``QM_TEST_GO`` exists, at most 30 s), ``hold_ms`` (then stay that long inside). In a
process started with ``QM_TEST_HANG=1`` the call never returns: that process gets SIGKILL.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jobs.context import JobContext
from jobs.registry import job

JOB = "tests.process.square"


@job(JOB)
def square(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Square ``n``, recording the call and counting the calls that run at once."""
    record(ctx, "started")
    with running_at_once():
        if params.get("wait_go"):
            go = Path(os.environ["QM_TEST_GO"])
            deadline = time.monotonic() + 30
            while not go.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
        if params.get("hold_ms"):
            time.sleep(params["hold_ms"] / 1000)
        if os.environ.get("QM_TEST_HANG") == "1":
            threading.Event().wait()
    record(ctx, "done")
    return {"n": params["n"], "square": params["n"] ** 2}


def record(ctx: JobContext, what: str) -> None:
    line = json.dumps(
        {
            "pid": os.getpid(),
            "run": ctx.run_id,
            "instance": ctx.instance_id,
            "n": ctx.params.get("n"),
            "attempt": ctx.attempt,
            "what": what,
            "at": time.time(),
        }
    )
    fd = os.open(os.environ["QM_TEST_RECORD"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


@contextmanager
def running_at_once() -> Iterator[None]:
    """Count this call as running (in ``QM_TEST_COUNTER``, if set) while inside."""
    path = os.environ.get("QM_TEST_COUNTER")
    if path:
        update_counter(Path(path), +1)
    try:
        yield
    finally:
        if path:
            update_counter(Path(path), -1)


def update_counter(path: Path, delta: int) -> dict[str, int]:
    """Add ``delta`` to the calls running now, keep the most ever, under the file's lock."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    with os.fdopen(fd, "r+") as file:
        fcntl.flock(file, fcntl.LOCK_EX)  # released when the file is closed
        raw = file.read()
        state = json.loads(raw) if raw else {"running": 0, "most": 0, "calls": 0}
        state["running"] += delta
        state["most"] = max(state["most"], state["running"])
        state["calls"] += 1 if delta > 0 else 0
        file.seek(0)
        file.truncate()
        file.write(json.dumps(state))
        file.flush()
    return dict(state)


def read_counter(path: Path) -> dict[str, int]:
    return update_counter(path, 0)
