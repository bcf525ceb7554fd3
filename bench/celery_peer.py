"""The workers scenario's Celery peer: a no-op task on the same RabbitMQ, no Django.

    celery -A bench.celery_peer worker -Q QUEUE --pool prefork|threads --concurrency 10 \
        --without-gossip --without-mingle --without-heartbeat

The task acknowledges late (``acks_late``: after it ran), the guarantee our handlers get from
``ctx.ack()``; everything else is Celery's default (prefetch multiplier 4, JSON, no result
backend). Gossip, mingle and heartbeats are off: they are cluster chatter, not task work, and
only slow the start.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

app = Celery("bench", broker=os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//"))
app.conf.update(
    task_acks_late=True,
    task_ignore_result=True,
    worker_hijack_root_logger=False,
    worker_log_color=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name="noop")
def noop(*args: Any, **kwargs: Any) -> None:
    return None
