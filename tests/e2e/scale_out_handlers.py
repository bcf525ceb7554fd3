"""The handler of the scale-out run's worker processes (``QUAYMASTER_HANDLER_MODULES``).

``scale_out`` appends one JSON line per call to the file named by ``QM_SCALE_OUT_RECORD``
(one ``write`` with O_APPEND per line, so the lines of concurrent processes never interleave
and the file's order is the order the calls started in) — the queue, the record id and version
of the event, the message id, the attempt and the worker's pid — then stands for
``QM_SCALE_OUT_WORK_MS`` of work (0 unless set) and acknowledges.

The run shortens Kafka consumer sessions with the ``QUAYMASTER_KAFKA_SESSION_TIMEOUT_MS``
setting (``Plan.kafka_session_ms``).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from workers.context import Context
from workers.registry import handler

HANDLER = "scale_out"


@handler(HANDLER)
def scale_out(message: dict[str, Any], ctx: Context) -> None:
    """Records the event it was given, then acknowledges it."""
    line = json.dumps(
        {
            "queue": ctx.queue.name,
            "record": message.get("record_id"),
            "version": message.get("version"),
            "id": ctx.message_id,
            "attempt": ctx.attempt,
            "pid": os.getpid(),
            "at": time.time(),
        }
    )
    fd = os.open(os.environ["QM_SCALE_OUT_RECORD"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)
    time.sleep(float(os.environ.get("QM_SCALE_OUT_WORK_MS", "0")) / 1000)
    ctx.ack()
