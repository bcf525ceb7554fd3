"""Handlers for the bench's worker processes (``QUAYMASTER_HANDLER_MODULES=bench.handlers``).

``bench-e2e`` (the end-to-end scenario): the arrival time is taken by the very first statement,
then ``"<table> <record_id> <time>"`` goes as one UDP datagram to the bench process on
127.0.0.1 at the port in ``QUAYMASTER_BENCH_E2E_PORT``, then the message is acknowledged.
Everything runs on one machine, so ``time.time()`` here and in the writer is one clock.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from workers.registry import handler

PORT_VARIABLE = "QUAYMASTER_BENCH_E2E_PORT"

_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # sendto is one syscall: thread-safe


@handler("bench-e2e")
def bench_e2e(message: dict[str, Any], ctx: Any) -> None:
    arrived = time.time()
    datagram = f"{message.get('table')} {message.get('record_id')} {arrived!r}"
    _socket.sendto(datagram.encode(), ("127.0.0.1", int(os.environ[PORT_VARIABLE])))
    ctx.ack()
