"""Handlers for the ``runworker`` processes that the tests start (``--handlers-module``).

They record what they do as JSON lines appended to the file named by ``QM_TEST_RECORD`` (one
``write`` per line with O_APPEND, so lines of concurrent processes never interleave).
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from workers.context import BatchContext, BatchMessage, Context
from workers.registry import handler


def record(ctx: Context, message: dict[str, Any], what: str) -> None:
    line = json.dumps(
        {
            "pid": os.getpid(),
            "id": ctx.message_id,
            "attempt": ctx.attempt,
            "n": message.get("n"),
            "what": what,
        }
    )
    fd = os.open(os.environ["QM_TEST_RECORD"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


@handler("record")
def record_and_ack(message: dict[str, Any], ctx: Context) -> None:
    """Stands for ``work_ms`` of work, then acknowledges."""
    record(ctx, message, "started")
    time.sleep(message.get("work_ms", 0) / 1000)
    record(ctx, message, "done")
    ctx.ack()


@handler("hang")
def hang(message: dict[str, Any], ctx: Context) -> None:
    """In a process started with ``QM_TEST_HANG=1``: never returns (that process gets
    SIGKILL). Elsewhere: acknowledges."""
    record(ctx, message, "started")
    if os.environ.get("QM_TEST_HANG") == "1":
        threading.Event().wait()
    record(ctx, message, "done")
    ctx.ack()


@handler("wait_for_go")
def wait_for_go(message: dict[str, Any], ctx: Context) -> None:
    """Runs until the file ``QM_TEST_GO`` exists (at most 30 s), then acknowledges."""
    record(ctx, message, "started")
    go = Path(os.environ["QM_TEST_GO"])
    deadline = time.monotonic() + 30
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    record(ctx, message, "done")
    ctx.ack()


@handler("record_batch", batch=5, max_wait=0.3)
def record_batch(messages: list[BatchMessage], ctx: BatchContext) -> None:
    """A batch handler: records each message started, never returns in a process started
    with ``QM_TEST_HANG=1`` (that process gets SIGKILL), else records each done and acks all."""
    for message in messages:
        record(message, message.body, "started")
    if os.environ.get("QM_TEST_HANG") == "1":
        threading.Event().wait()
    for message in messages:
        record(message, message.body, "done")
    ctx.ack_all()
