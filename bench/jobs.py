"""The jobs scenario's job and handler, for its worker processes.

- the job ``bench.noop`` returns ``None`` at once (the fan-out runs and the latency runs);
  loaded by the workers through ``QUAYMASTER_JOB_MODULES=bench.jobs``, and imported by the
  bench process itself, which starts the runs;
- the handler ``bench-job-completed`` (``runworker --handlers-module bench.jobs`` on a run's
  ``on_complete`` queue) takes the time by its very first statement, then sends
  ``"<run_id> <time>"`` as one UDP datagram to the bench process on 127.0.0.1 at the port in
  ``QUAYMASTER_BENCH_JOBS_PORT``, then acknowledges. Everything runs on one machine, so
  ``time.time()`` here and the instances' ``finished_at`` are one clock.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from jobs.registry import job
from workers.registry import handler

JOB = "bench.noop"
COMPLETED_HANDLER = "bench-job-completed"
PORT_VARIABLE = "QUAYMASTER_BENCH_JOBS_PORT"

_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # sendto is one syscall: thread-safe


@job(JOB)
def noop(params: dict[str, Any], ctx: Any) -> None:
    """Do nothing: what a run costs besides its work."""
    return None


@handler(COMPLETED_HANDLER)
def completed(message: dict[str, Any], ctx: Any) -> None:
    arrived = time.time()
    datagram = f"{message.get('run_id')} {arrived!r}"
    _socket.sendto(datagram.encode(), ("127.0.0.1", int(os.environ[PORT_VARIABLE])))
    ctx.ack()
