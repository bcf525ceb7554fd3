"""Running a replay: chunks of outbox rows at the replay's rate, resumable, cancellable.

```
 run(replay, owner) ─► take the lease (free, expired or already owner's) ─► loop:
     wait until the last chunk's start + its size / rate   (never more than rate * t + one chunk)
     one transaction:  lock the replay row ─► still running? still our lease? (else stop)
                       the next page of selected records after the cursor, locked, id order
                       their outbox rows (``replay`` events)  +  cursor, counts, lease renewed
     no record left ─► completed
```

Each chunk is one transaction holding the outbox rows and the cursor, so whatever kills the
runner (SIGKILL, a lost database) loses nothing and writes nothing twice: the next runner
starts after the last chunk that committed. The relay then publishes the rows at least once,
as it does every record event. The replay row is locked for the chunk, so a cancel waits for
the chunk in flight and no chunk starts after it; two runners that both believe they hold
the lease (one paused past its expiry) cannot write the same records, since each chunk reads
the cursor under that lock and checks the owner.

The records of a page are locked too (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite has one
writer), so a replayed version and a concurrent update of the same record reach the outbox,
and the broker, in version order.

Who runs it: ``manage.py replay`` in the foreground, and the scheduler's ``queues.replays``
tick (``run_due``), which picks up running replays nobody holds — started from the API or
the back-office, or left by a runner that died (its lease expired) — for a slice of time.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from queues.dialects import NewOutboxRow, dialect
from queues.models.replay import Replay, ReplayState
from queues.outbox import NOTIFY_CHANNEL, record_key, replay_message
from queues.replay.errors import InvalidReplay
from queues.replay.selection import Selection

log = logging.getLogger("queues.replay")

#: The most records one chunk (one transaction) writes.
MAX_CHUNK = 500
#: A chunk holds this much of a second's rate, so pacing is smooth at any rate.
CHUNK_SECONDS = 0.1


class Outcome(enum.StrEnum):
    COMPLETED = "completed"
    STOPPED = "stopped"  # cancelled, failed or completed meanwhile, or not running
    BUSY = "busy"  # another runner holds it
    LOST = "lost"  # the lease went to another runner mid-run
    PAUSED = "paused"  # the time slice ended; it goes on at the next run


@dataclass(frozen=True)
class _Context:
    replay: Replay
    selection: Selection
    condition: Q
    table: str
    actor: str | None


def chunk_size(rate: int) -> int:
    return max(1, min(MAX_CHUNK, math.ceil(rate * CHUNK_SECONDS)))


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def lease_ttl() -> timedelta:
    return timedelta(seconds=float(settings.QUAYMASTER_REPLAY_LEASE_SECONDS))


def acquire(replay_id: int, owner: str) -> bool:
    """Take the replay's lease if it is running and the lease is free, expired or
    ``owner``'s."""
    now = timezone.now()
    free = Q(owner="") | Q(owner=owner) | Q(lease_expires_at__isnull=True)
    free |= Q(lease_expires_at__lt=now)
    taken = Replay.objects.filter(free, pk=replay_id, state=ReplayState.RUNNING).update(
        owner=owner,
        lease_expires_at=now + lease_ttl(),
        started_at=Coalesce(F("started_at"), now),
    )
    return taken == 1


def release(replay_id: int, owner: str) -> None:
    Replay.objects.filter(pk=replay_id, owner=owner).update(owner="", lease_expires_at=None)


def fail(replay_id: int, reason: str) -> None:
    Replay.objects.filter(pk=replay_id, state=ReplayState.RUNNING).update(
        state=ReplayState.FAILED, reason=reason, finished_at=timezone.now(), owner=""
    )
    log.warning("replay %s failed: %s", replay_id, reason)


def run(
    replay_id: int,
    owner: str,
    *,
    seconds: float | None = None,
    progress: Callable[[Replay], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Outcome:
    """Run the replay until it ends (or for ``seconds``, keeping the lease for ``owner``'s
    next call), at its rate. ``progress`` is called after each chunk."""
    if not acquire(replay_id, owner):
        return Outcome.BUSY
    context = _context(replay_id)
    if context is None:
        return Outcome.STOPPED
    rate = context.replay.rate
    size = chunk_size(rate)
    due = clock()
    end = None if seconds is None else due + seconds
    while True:
        if end is not None and max(due, clock()) >= end:
            return Outcome.PAUSED
        wait = due - clock()
        if wait > 0:
            sleep(wait)
        began = clock()
        outcome, written, replay = _chunk(context, owner, size, timezone.now())
        if replay is not None and progress is not None:
            progress(replay)
        if outcome is not None:
            return outcome
        # Paced from this chunk's start, never from the replay's: a stalled chunk is not
        # made up for by a burst after it.
        due = began + written / rate


def run_due(seconds: float, owner: str | None = None) -> int:
    """Give the running replays nobody holds (or whose holder died) ``seconds`` between
    them, oldest first; the scheduler's tick. Returns how many it ran."""
    owner = owner or new_owner()
    now = timezone.now()
    due = list(
        Replay.objects.filter(state=ReplayState.RUNNING)
        .filter(Q(owner="") | Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
        .order_by("id")
        .values_list("id", flat=True)
    )
    ran = 0
    for replay_id in due:
        try:
            outcome = run(replay_id, owner, seconds=seconds / len(due))
        except Exception:  # the database went away mid-chunk: the next tick tries again
            log.exception("replay %s stopped by an error; it resumes at the next tick", replay_id)
            continue
        finally:
            release(replay_id, owner)
        ran += outcome is not Outcome.BUSY
    return ran


def _context(replay_id: int) -> _Context | None:
    replay = (
        Replay.objects.select_related("link__table", "table", "created_by")
        .filter(pk=replay_id)
        .first()
    )
    if replay is None or replay.state != ReplayState.RUNNING:
        return None
    if replay.link is None:
        fail(replay_id, "Its table link was deleted.")
        return None
    try:
        selection = Selection.parse(replay.selection)
        condition = selection.condition(replay.link)
    except InvalidReplay as error:
        fail(replay_id, f"Its selection no longer applies: {error.message}")
        return None
    actor = replay.created_by.get_username() if replay.created_by is not None else None
    return _Context(replay, selection, condition, replay.table.slug, actor)


def _chunk(
    context: _Context, owner: str, size: int, now: dt.datetime
) -> tuple[Outcome | None, int, Replay | None]:
    """One transaction: the next page's outbox rows and the cursor after them; ``now``, when
    the chunk began, is each message's ``replayed_at``."""
    sql = dialect()
    with transaction.atomic():
        replay = sql.locked(Replay.objects.filter(pk=context.replay.pk)).first()
        if replay is None or replay.state != ReplayState.RUNNING:
            return Outcome.STOPPED, 0, replay
        if replay.owner != owner:
            return Outcome.LOST, 0, replay
        page, scanned_to = context.selection.page(
            context.condition, replay.cursor, replay.last_id, size
        )
        found = list(sql.locked(page)[:size].values_list("id", "version", "data", "updated_at"))
        if not found and scanned_to is not None:
            # A list of ids none of which is still selected: step over them.
            replay.cursor = scanned_to
            replay.lease_expires_at = now + lease_ttl()
            replay.save(update_fields=["cursor", "lease_expires_at"])
            return None, 0, replay
        if not found:
            replay.state = ReplayState.COMPLETED
            replay.finished_at = now
            replay.owner = ""
            replay.lease_expires_at = None
            replay.save(update_fields=["state", "finished_at", "owner", "lease_expires_at"])
            log.info("replay %s completed: %d record(s) written", replay.pk, replay.written)
            return Outcome.COMPLETED, 0, replay
        rows = []
        for record_id, version, data, updated_at in found:
            message_id = uuid.uuid4()
            body = replay_message(
                handler=replay.handler,
                message_id=message_id,
                replay_id=replay.replay_id,
                table=context.table,
                record_id=record_id,
                version=version,
                data=data,
                actor=context.actor,
                time=updated_at,
                replayed_at=now,
            )
            rows.append(
                NewOutboxRow(
                    message_id, replay.queue_id, record_key(context.table, record_id), body
                )
            )
        sql.insert_outbox(rows, NOTIFY_CHANNEL)
        replay.cursor = found[-1][0]
        replay.written += len(rows)
        replay.lease_expires_at = now + lease_ttl()
        replay.save(update_fields=["cursor", "written", "lease_expires_at"])
    return None, len(rows), replay
