"""The handler of the failover scenario's workers (``--handlers-module bench.failover_handlers``).

``bench-failover``: ``"<pid> <partition> <seq> <time>"`` as one UDP datagram to the bench
process on 127.0.0.1 at the port in ``QUAYMASTER_BENCH_FAILOVER_PORT``, then the ack. The
partition is the one the bench produced the message to (it is in the body).
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from workers.registry import handler

PORT_VARIABLE = "QUAYMASTER_BENCH_FAILOVER_PORT"

_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # sendto is one syscall: thread-safe


@handler("bench-failover")
def bench_failover(message: dict[str, Any], ctx: Any) -> None:
    datagram = f"{os.getpid()} {message.get('p')} {message.get('seq')} {time.time()!r}"
    _socket.sendto(datagram.encode(), ("127.0.0.1", int(os.environ[PORT_VARIABLE])))
    ctx.ack()
