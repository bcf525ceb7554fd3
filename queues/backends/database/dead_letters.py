"""The database queue's dead letters: its ``dead`` rows, read, sent back (``ready``, attempts
0, available now) and deleted with one statement each; purging deletes the ``ready`` rows."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable
from typing import Any

from django.utils import timezone

from queues.backends.database.claim import json_bytes, rows
from queues.backends.database.errors import database_errors
from queues.backends.scan import wanted_set
from queues.messages import DeadLetter
from queues.models import MessageState


class DatabaseDeadLetters:
    def __init__(self, queue_id: int) -> None:
        self.queue_id = queue_id

    def peek(self, limit: int, keys: Iterable[str] | None) -> list[DeadLetter]:
        """The queue's ``dead`` rows, oldest first; reading them changes nothing."""
        with database_errors("reading dead letters"):
            dead = list(self._dead(wanted_set(keys)).order_by("id")[: max(0, limit)])
        return [
            DeadLetter(
                key=str(row.message_id),
                message_id=str(row.message_id),
                body=json_bytes(row.body),
                reason=row.last_error or "(no reason recorded)",
                attempts=row.attempts,
                headers=dict(row.headers or {}),
                ordering_key=row.ordering_key or None,
                origin=f"Row {row.pk} of the database queue's messages",
            )
            for row in dead
        ]

    def redrive(self, message_ids: Iterable[str] | None) -> int:
        """Dead rows become ready now with attempts 0: one UPDATE, so nothing is in between."""
        with database_errors("sending dead letters back"):
            return int(
                self._dead(wanted_set(message_ids)).update(
                    state=MessageState.READY,
                    attempts=0,
                    available_at=timezone.now(),
                    last_error="",
                    lease_token=None,
                    lease_owner="",
                )
            )

    def delete(self, message_id: str) -> bool:
        with database_errors("deleting a dead letter"):
            deleted, _ = self._dead({message_id}).delete()
        return deleted > 0

    def purge(self) -> int:
        """Delete the ready rows (delayed retries included). In-flight rows stay: a handler is
        working on them and will settle them; dead rows stay for an admin."""
        with database_errors("purging"):
            deleted, _ = rows(self.queue_id).filter(state=MessageState.READY).delete()
        return int(deleted)

    def _dead(self, wanted: set[str] | None) -> Any:
        dead = rows(self.queue_id).filter(state=MessageState.DEAD)
        if wanted is None:
            return dead
        ids = []
        for value in wanted:
            with contextlib.suppress(ValueError):
                ids.append(uuid.UUID(value))
        return dead.filter(message_id__in=ids)
