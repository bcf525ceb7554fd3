"""Pausing a queue's consumption, and resuming it: the one place that writes ``paused_at``.

A queue with ``pause_after_failures`` set is paused by its workers (``workers.middleware.pause``)
after that many handler failures in a row: ``pause`` stamps ``paused_at`` and the reason. While
it is set no worker fetches from the queue: the worker that saw the failures stops at once, and
``runworkers`` treats a paused queue as it treats a disabled one (its workers get SIGTERM and
drain). Publishing goes on: messages wait in the queue until an admin resumes it (``resume``),
which clears the pause; the supervisor then starts workers again.

Both write with a conditional UPDATE (not ``save``): ``updated_at`` stays, so the supervisor
does not take a pause for a change of settings, and of several workers that trip at once only
one pauses, and only that one sends ``queue_paused``. The apps above (alerts) listen to the two
signals; this module knows nothing of them.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from audit import trail
from queues.models import Queue

logger = logging.getLogger("queues.pausing")

#: Sent once when a queue is paused: ``queue`` (the Queue, reloaded), ``failures``, ``reason``.
queue_paused = Signal()
#: Sent when an admin resumes a paused queue: ``queue``, ``user`` (who resumed it, or None).
queue_resumed = Signal()


def pause(queue_id: int, failures: int, reason: str) -> bool:
    """Pause the queue unless it is paused already; whether this call paused it."""
    text = f"Paused after {failures} consecutive handler failures. Last: {reason}"[:2000]
    with transaction.atomic():
        changed = Queue.objects.filter(pk=queue_id, paused_at__isnull=True).update(
            paused_at=timezone.now(), paused_reason=text
        )
        if not changed:
            return False
        queue = Queue.objects.get(pk=queue_id)
        trail.record("queue.pause", queue, details={"failures": failures, "reason": reason})
    # A listener that fails (a notification that cannot go out) must not undo the pause.
    for receiver, result in queue_paused.send_robust(
        sender=Queue, queue=queue, failures=failures, reason=reason
    ):
        if isinstance(result, Exception):
            logger.error("%r failed on the pause of queue %s: %s", receiver, queue.name, result)
    return True


def is_paused(queue_id: int) -> bool:
    return Queue.objects.filter(pk=queue_id, paused_at__isnull=False).exists()


def resume(queue: Queue, user: object | None = None) -> bool:
    """Clear the queue's pause; whether it was paused. Workers fetch again (the supervisor
    starts them within its refresh period; an idle paused worker notices by itself)."""
    with transaction.atomic():
        changed = Queue.objects.filter(pk=queue.pk, paused_at__isnull=False).update(
            paused_at=None, paused_reason=None
        )
        if changed:
            trail.record("queue.resume", queue, before={"paused_reason": queue.paused_reason})
    queue.paused_at = None
    queue.paused_reason = None
    if changed:
        for receiver, result in queue_resumed.send_robust(sender=Queue, queue=queue, user=user):
            if isinstance(result, Exception):
                logger.error("%r failed on resuming queue %s: %s", receiver, queue.name, result)
    return bool(changed)
