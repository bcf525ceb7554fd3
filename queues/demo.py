"""The embedded default's demo queue: a database queue linked to the demo Orders table, so
a new user sees a record change travel through the outbox, the relay and a worker."""

from __future__ import annotations

from django.db import transaction

from queues.models import Queue, QueueLink, QueueType
from zstorage.models import Table

DEMO_QUEUE = "order-events"


@transaction.atomic
def install_demo_queue() -> bool:
    """Create the demo queue and its link once; returns False when the queue exists."""
    orders = Table.objects.filter(slug="orders").first()
    if orders is None or Queue.objects.filter(name=DEMO_QUEUE).exists():
        return False
    queue = Queue(name=DEMO_QUEUE, type=QueueType.DATABASE, visibility_timeout=30, max_attempts=5)
    queue.full_clean()
    queue.save()
    QueueLink.objects.create(table=orders, queue=queue, handler="log")
    return True
