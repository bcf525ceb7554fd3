"""What differs between database vendors for the queues app, as one object per vendor.

Every statement whose text or strategy depends on the vendor lives in a dialect (see
``postgresql.py`` and ``sqlite.py``), named for what it does: the relay's read of an outbox
head and its marks, the outbox insert with its wake-up, NOTIFY and LISTEN, the database
queue's claim locking, bulk row writes (the lifecycle log) and session locks. Callers ask
``queues.dialects.dialect()`` for the current connection's one and never test the vendor
themselves.

Statements run on Django's connection of the calling thread, inside the caller's transaction
when there is one; a dialect holds no state of its own.
"""

from __future__ import annotations

import abc
import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from django.db.models import QuerySet

from queues.models import OutboxMessage

#: A pending outbox row as the relay reads it: (id, message id as text, ordering key,
#: body — decoded, or its JSON text as stored, which the relay then sends unchanged —,
#: attempts, whether it is due now, priority or None).
OutboxHead = tuple[int, str, str, dict[str, Any] | str, int, bool, int | None]


class NewOutboxRow(NamedTuple):
    """An outbox row to write (a model instance costs more to build than the row to send)."""

    message_id: uuid.UUID
    queue_id: int
    ordering_key: str
    body: dict[str, Any]

    def model(self) -> OutboxMessage:
        return OutboxMessage(
            message_id=self.message_id,
            queue_id=self.queue_id,
            ordering_key=self.ordering_key,
            body=self.body,
        )


@dataclass(frozen=True, slots=True)
class Renewal:
    """Extend relay lease ``queue_id`` to ``expires_at`` if ``owner`` still holds it."""

    queue_id: int
    owner: str
    expires_at: dt.datetime


class Listener(abc.ABC):
    """A LISTEN session on one channel, on a connection of its own."""

    @abc.abstractmethod
    def wait(self, seconds: float) -> None:
        """Return at the first notification, or after ``seconds``."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Dialect(abc.ABC):
    vendor: ClassVar[str]
    #: NOTIFY reaches LISTEN sessions when its transaction commits; without it, waiters poll.
    listens: ClassVar[bool] = False
    #: Session-level advisory locks exist (``try_advisory_lock``); else locks are rows.
    advisory_locks: ClassVar[bool] = False
    #: ``SELECT … FOR UPDATE`` holds other writers off rows (SQLite has one writer at a time).
    row_locks: ClassVar[bool] = False

    # -- the relay ----------------------------------------------------------------------------

    @abc.abstractmethod
    def outbox_head(
        self, queue_id: int, now: dt.datetime, limit: int, skip: set[int]
    ) -> list[OutboxHead]:
        """The queue's oldest ``limit`` pending outbox rows, in id order, leaving out the ids
        in ``skip``, as plain values (model instances cost more than publishing them)."""

    @abc.abstractmethod
    def mark_published(
        self,
        marks: Sequence[tuple[int, Any, str]],
        at: dt.datetime,
        renewal: Renewal | None,
        traced: bool = True,
    ) -> bool:
        """Mark outbox rows (id, broker reference, broker id) published at ``at`` and apply
        ``renewal`` on the way; False when that lease is no longer its owner's (True without
        one). ``traced``: write each row's ``MessageTrace`` in the same statement (a record
        event's table, record and version read from its body in SQL, and only when its
        ordering key is that record's, so no other message can pose as a record's event)."""

    # -- the outbox and wake-ups ----------------------------------------------------------------

    def insert_outbox(self, rows: Sequence[NewOutboxRow], channel: str) -> None:
        """Write outbox rows, in order, in the caller's transaction and wake ``channel``'s
        listeners when it commits (where the vendor can)."""
        OutboxMessage.objects.bulk_create([row.model() for row in rows])

    def notify_at_commit(self, channel: str) -> None:  # noqa: B027
        """Wake ``channel``'s listeners once per transaction, when it commits."""

    def notify(self, channel: str) -> None:  # noqa: B027
        """Wake ``channel``'s listeners when the current transaction commits."""

    def listen(self, channel: str) -> Listener | None:
        """A LISTEN session on ``channel``, or None where waiters poll instead."""
        return None

    # -- the database queue -----------------------------------------------------------------------

    def locked(self, rows: QuerySet[Any]) -> QuerySet[Any]:
        """``rows`` read for an update in the caller's transaction: locked against other
        writers until it ends, where the vendor has row locks."""
        return rows

    def claimable(self, candidates: QuerySet[Any]) -> QuerySet[Any]:
        """``candidates`` as a claim reads them inside its transaction: locked, so that
        concurrent claimers neither wait for nor share a row, where the vendor can."""
        return candidates

    # -- bulk writes and locks --------------------------------------------------------------------

    @abc.abstractmethod
    def insert_many(
        self,
        cursor: Any,
        table: str,
        columns: Sequence[str],
        rows: Iterable[tuple[Any, ...]],
        batch_size: int = 500,
    ) -> None:
        """Append ``rows`` (Python values in ``columns`` order) to ``table`` in as few round
        trips as the vendor allows; run it inside a transaction."""

    def try_advisory_lock(self, key: int) -> bool:
        raise NotImplementedError(f"{self.vendor} has no advisory locks")

    def advisory_unlock(self, key: int) -> None:
        raise NotImplementedError(f"{self.vendor} has no advisory locks")
