"""The jobs scenario's Celery peer: a ``chord`` (a group of no-op tasks plus a callback) on the
same RabbitMQ, with Celery's database result backend on the same PostgreSQL, no Django.

    QUAYMASTER_BENCH_CELERY_QUEUE=QUEUE celery -A bench.celery_chord_peer worker -Q QUEUE \
        --pool threads --concurrency 10 --without-gossip --without-mingle --without-heartbeat

A chord needs a result backend that keeps every header task's result; Celery's RPC backend
cannot run chords, so the results go to PostgreSQL through SQLAlchemy (``db+postgresql+psycopg``,
the database of ``DATABASE_URL``: the bench's own). The database backend has no native chord
support: Celery sends ``celery.chord_unlock``, which checks the group's results and retries
every ``CHORD_UNLOCK_SECONDS`` until all are ready, then sends the callback. That task, like
every other, goes to ``QUAYMASTER_BENCH_CELERY_QUEUE`` (the default queue), which the worker
serves.

Tasks acknowledge late (``acks_late``: after they ran), the guarantee our handlers get from
``ctx.ack()``; everything else is Celery's default (prefetch multiplier 4, JSON).

- ``chord.noop(stamp)`` returns ``time.time()`` when ``stamp`` is true (the latency runs: the
  callback learns when the last header task ended), else ``None``;
- ``chord.done(results, port, tag)`` takes the time by its first statement and sends
  ``"<tag> <time> <latest header result or 0>"`` as one UDP datagram to the bench process.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from celery import Celery

QUEUE_VARIABLE = "QUAYMASTER_BENCH_CELERY_QUEUE"
#: Celery's default interval of ``chord_unlock`` (``Signature.apply_async(countdown=1)``).
CHORD_UNLOCK_SECONDS = 1.0


def result_backend(database_url: str) -> str:
    """``postgres://u:p@h:5432/db`` as a SQLAlchemy URL for Celery's database backend."""
    parts = urlsplit(database_url)
    return "db+" + urlunsplit(("postgresql+psycopg", parts.netloc, parts.path, parts.query, ""))


app = Celery(
    "bench-chord",
    broker=os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//"),
    backend=result_backend(os.environ.get("DATABASE_URL", "postgresql://localhost/postgres")),
)
app.conf.update(
    task_acks_late=True,
    task_default_queue=os.environ.get(QUEUE_VARIABLE, "celery"),
    result_extended=False,
    worker_hijack_root_logger=False,
    worker_log_color=False,
    broker_connection_retry_on_startup=True,
)

_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)


@app.task(name="chord.noop")
def noop(stamp: bool = False) -> float | None:
    return time.time() if stamp else None


@app.task(name="chord.done")
def done(results: list[Any], port: int, tag: str) -> None:
    arrived = time.time()
    last = max((r for r in results if isinstance(r, int | float)), default=0.0)
    _socket.sendto(f"{tag} {arrived!r} {last!r}".encode(), ("127.0.0.1", int(port)))
