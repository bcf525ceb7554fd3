"""Deleting a queue: refused while anything still points at it.

Deleting the row would otherwise take the queue's database messages and its unpublished
outbox rows with it (messages lost without a word), fail at commit on the job runs and
schedules that protect their queue, and silently stop the table links that feed it. So
``delete_queue`` refuses with ``QueueInUse``, naming each kind of row in the way and how many,
until an admin has moved or deleted them. What only describes the queue goes with it:
published outbox rows, the relay's lease, idempotency keys, worker heartbeats, and its place
in API tokens' queue lists (a token whose last queue goes may publish nowhere: an empty list
is no queue, ``accounts.scopes``).

The count and the delete run in one transaction holding the queue's row (``FOR UPDATE`` on
PostgreSQL, which waits for writers inserting rows that point at it; SQLite's transactions
take the write lock at once), so nothing slips in between.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import ProtectedError, RestrictedError

from audit import trail
from queues.errors import QueueInUse
from queues.models import DatabaseMessage, OutboxMessage, OutboxState, Queue
from queues.services import settings_of

#: What stands in the way, as ``QueueInUse.errors`` keys and a phrase for one and for many.
IN_THE_WAY = {
    "database_messages": ("message in its database queue", "messages in its database queue"),
    "outbox": ("outbox row not yet published", "outbox rows not yet published"),
    "links": ("table link", "table links"),
    "job_runs": ("job run", "job runs"),
    "schedules": ("schedule", "schedules"),
}


def in_the_way(queue: Queue) -> dict[str, int]:
    """How many rows of each kind keep ``queue`` from being deleted (only those with some)."""
    counts = {
        "database_messages": DatabaseMessage.objects.filter(queue=queue).count(),
        "outbox": OutboxMessage.objects.filter(queue=queue)
        .exclude(state=OutboxState.PUBLISHED)
        .count(),
        "links": queue.links.count(),
        "job_runs": queue.job_runs.count(),
        "schedules": queue.schedules.count(),
    }
    return {kind: count for kind, count in counts.items() if count}


def delete_queue(queue: Queue) -> None:
    with transaction.atomic():
        locked = Queue.objects.select_for_update().filter(pk=queue.pk).first()
        if locked is None:
            return  # deleted meanwhile: what was asked is done
        found = in_the_way(locked)
        if found:
            raise _in_use(locked, found)
        try:
            trail.record("queue.delete", locked, before=settings_of(locked))
            locked.delete()
        except (ProtectedError, RestrictedError) as exc:  # a relation added after IN_THE_WAY
            rows = (
                exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects
            )
            kinds = sorted({str(row._meta.verbose_name_plural) for row in rows})
            raise QueueInUse(
                f"Queue {locked.name!r} is still used by {', '.join(kinds)}; delete or move "
                "them first.",
                {"other": kinds},
            ) from None


def _in_use(queue: Queue, found: dict[str, int]) -> QueueInUse:
    phrases = {
        kind: f"{count} {IN_THE_WAY[kind][0] if count == 1 else IN_THE_WAY[kind][1]}"
        for kind, count in found.items()
    }
    return QueueInUse(
        f"Queue {queue.name!r} is still in use: {', '.join(phrases.values())}. Delete or move "
        "them first (purge the queue, retry or delete the outbox rows, delete the links, runs "
        "and schedules).",
        {kind: [phrase] for kind, phrase in phrases.items()},
    )
