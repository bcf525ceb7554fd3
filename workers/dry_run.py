"""Dry run: run a dead letter's handler once, see what it would do, change nothing.

An admin about to send messages back checks a fix first: the same handler code, the same
``ctx`` (``workers.sandbox``), attempt 1 as a message sent back would have. What it would have
done is shown instead of done: its settlement, the messages it would publish (by
``ctx.publish``, or through table links as the events of its record writes), the record writes
themselves, files, the outbound effects it was stopped at (``ctx.outbound``: the built-in
``webhook`` and ``send_email`` are refused before sending), its log lines and its exception.
The dead letter stays where it is; each dry run is audited (``dead_letter.dry_run``, written
before the handler runs).

The handler runs on a thread of its own, in one database transaction that is always rolled
back; the thread's connection is closed at the end, which ends the session's advisory locks
(``ctx.lock`` on PostgreSQL) if the handler left one taken. The caller waits at most
``QUAYMASTER_DRY_RUN_SECONDS``: past that it answers "still running", and the handler's
services refuse every further call so that it ends at its next one (its transaction, still
open until then, is rolled back when it ends). At most ``MAX_RUNNING`` dry runs run at once in
a process (an overrunning one keeps its slot until it ends): one more is ``DryRunBusy``.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction

from audit import trail
from queues.dead_letters import find_dead_letter
from queues.messages import DeadLetter, Delivery
from queues.models import Queue
from workers.circuit import Circuits
from workers.context import BatchContext, BatchMessage, Context, Services
from workers.errors import DryRunBusy, Permanent, SideEffectRefused
from workers.job import Outcome, Settlement
from workers.message import handler_of
from workers.registry import Handler, registered_names
from workers.sandbox import (
    Capture,
    CapturedLog,
    LogLine,
    RecordWrite,
    SandboxPublisher,
    WouldPublish,
    capturing,
    linked_messages,
    outbox_mark,
    sandbox,
)

DEFAULT_SECONDS = 10.0
MAX_RUNNING = 4
_slots = threading.BoundedSemaphore(MAX_RUNNING)


@dataclass
class DryRunResult:
    """What the handler would have done. ``ran`` is False when the message never reaches a
    handler (not a JSON object naming one, or a handler registered nowhere here)."""

    message_id: str
    handler: str
    ran: bool = False
    batch: bool = False
    settlement: str | None = None  # ack, retry, dead_letter; None: left unsettled
    delay: float | None = None
    reason: str = ""
    verdict: str = ""
    published: list[WouldPublish] = field(default_factory=list)
    record_writes: list[RecordWrite] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    log: list[LogLine] = field(default_factory=list)
    error: str = ""
    traceback: str = ""
    timed_out: bool = False
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "handler": self.handler,
            "ran": self.ran,
            "batch": self.batch,
            "settlement": self.settlement,
            "delay": self.delay,
            "reason": self.reason,
            "verdict": self.verdict,
            "would_publish": [message.as_dict() for message in self.published],
            "record_writes": [write.as_dict() for write in self.record_writes],
            "files": self.files,
            "not_sent": self.refused,
            "log": [line.as_dict() for line in self.log],
            "error": self.error or None,
            "traceback": self.traceback or None,
            "timed_out": self.timed_out,
            "seconds": round(self.seconds, 3),
            "notes": self.notes,
        }


def time_bound() -> float:
    return float(getattr(settings, "QUAYMASTER_DRY_RUN_SECONDS", DEFAULT_SECONDS))


def dry_run_dead_letter(
    queue: Queue, key: str, *, request: Any = None, seconds: float | None = None
) -> DryRunResult:
    """Dry-run dead letter ``key`` of ``queue`` (``DeadLetterNotFound`` when it is gone). The
    audit row is written before the handler runs: on SQLite an overrunning handler's open
    transaction would hold up a write after it."""
    letter = find_dead_letter(queue, key)
    trail.record(
        "dead_letter.dry_run",
        queue,
        details={"keys": [key], "message_id": letter.message_id, "handler": letter.handler},
        request=request,
    )
    return dry_run(queue, letter, seconds=seconds)


def dry_run(queue: Queue, letter: DeadLetter, *, seconds: float | None = None) -> DryRunResult:
    """Run ``letter``'s handler in a sandbox, waiting at most ``seconds`` for it."""
    result = DryRunResult(message_id=letter.message_id, handler=letter.handler)
    try:
        body = json.loads(letter.body)
        name = handler_of(body)
        handler = registered_names().get(name)
    except (ValueError, UnicodeDecodeError, Permanent) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        result.verdict = "A worker would dead-letter it again at once: no handler runs."
        return result
    if not _slots.acquire(blocking=False):
        raise DryRunBusy(
            f"{MAX_RUNNING} dry runs are running already (or overran their time bound and "
            "have not ended yet); try again shortly."
        )
    run = _Run(queue, letter, handler, body)
    thread = threading.Thread(target=run.main, name=f"dry-run-{letter.message_id}", daemon=True)
    started = time.monotonic()
    try:
        thread.start()
    except BaseException:
        _slots.release()
        raise
    bound = time_bound() if seconds is None else seconds
    finished = run.done.wait(bound)
    if not finished:
        run.capture.abandoned = True
    return run.result(result, timed_out=not finished, bound=bound, started=started)


class _Run:
    """One dry run's thread: the transaction, the handler, the capture."""

    def __init__(self, queue: Queue, letter: DeadLetter, handler: Handler, body: Any) -> None:
        self.queue = queue
        self.letter = letter
        self.handler = handler
        self.body = body
        self.capture = Capture()
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.traceback = ""
        self.outcome: Outcome | None = None

    def main(self) -> None:
        try:
            with transaction.atomic():
                mark = outbox_mark()
                with capturing(self.capture):
                    self._call()
                try:
                    self.capture.linked = linked_messages(self.capture, mark)
                except DatabaseError as exc:
                    self.capture.notes.append(
                        "The messages of the record writes could not be read back (the "
                        f"handler's error aborted the transaction): {exc}"
                    )
                transaction.set_rollback(True)
        except Exception as exc:
            if self.error is None:
                self.error, self.traceback = exc, traceback.format_exc()
        finally:
            try:
                connection.close()  # ends the session: advisory locks left taken go with it
            finally:
                self.done.set()
                _slots.release()

    def _call(self) -> None:
        publisher = SandboxPublisher(self.capture)
        events = CapturedLog(self.capture)
        common: dict[str, Any] = {
            "queue": self.queue,
            "handler": self.handler.name,
            "events": events,
            "publisher": publisher,
            "breakers": Circuits(),
        }
        delivery = Delivery(
            message_id=self.letter.message_id,
            body=self.letter.body,
            attempt=1,  # as sent back: attempts start again
            headers=dict(self.letter.headers),
            handle=None,
            ordering_key=self.letter.ordering_key,
        )
        ctx: Services
        settled: Context
        if self.handler.batch is not None:
            settled = BatchMessage(self.body, delivery=delivery, **common)
            ctx = BatchContext(messages=[settled], **common)
            sandbox(settled, self.capture)
            argument: Any = [settled]
        else:
            settled = Context(delivery=delivery, **common)
            ctx, argument = settled, self.body
        sandbox(ctx, self.capture)
        try:
            self.handler(argument, ctx)
        except BaseException as exc:  # a handler's SystemExit must not end the thread unseen
            self.error, self.traceback = exc, traceback.format_exc()
        self.outcome = settled.outcome

    def result(
        self, result: DryRunResult, *, timed_out: bool, bound: float, started: float
    ) -> DryRunResult:
        capture = self.capture
        result.ran = True
        result.batch = self.handler.batch is not None
        result.handler = self.handler.name
        result.seconds = time.monotonic() - started
        result.timed_out = timed_out
        result.published = [*capture.published, *capture.linked]
        result.record_writes = capture.record_writes()
        result.files = list(capture.files)
        result.refused = list(capture.refused)
        result.log = list(capture.lines)
        result.notes = list(capture.notes)
        if capture.dropped_lines:
            result.notes.append(f"{capture.dropped_lines} more log lines were not kept.")
        if result.batch:
            result.notes.append(
                f"{self.handler.name} is a batch handler: it ran with a batch of this one message."
            )
        outcome = self.outcome
        if outcome is not None:
            result.settlement = str(outcome.settlement)
            result.delay = outcome.delay
            result.reason = outcome.reason
        if self.error is not None:
            result.error = f"{type(self.error).__name__}: {self.error}"
            result.traceback = self.traceback
        if timed_out:
            result.verdict = (
                f"Still running after {bound:g} s: the dry run stopped waiting. Nothing it did "
                "is applied: its database work is rolled back when it returns, and its next "
                "call to ctx is refused."
            )
            return result
        result.verdict = verdict(outcome, self.error, int(self.queue.max_attempts))
        return result


def verdict(outcome: Outcome | None, error: BaseException | None, max_attempts: int) -> str:
    """What a worker would do with the message after this run (on its first attempt)."""
    if isinstance(error, SideEffectRefused):
        return (
            "Stopped before an effect a dry run does not perform (listed under Not sent): "
            "up to there, the handler ran as shown."
        )
    if outcome is not None:
        if outcome.settlement == Settlement.ACK:
            return "Acknowledged: a worker would remove it from the queue."
        if outcome.settlement == Settlement.RETRY:
            after = "with backoff" if outcome.delay is None else f"in {outcome.delay:g} s"
            return f"Retry asked: a worker would deliver it again {after}."
        if outcome.settlement == Settlement.DEAD_LETTER:
            return f"Dead-lettered by the handler: {outcome.reason}"
    if error is not None:
        if isinstance(error, Permanent):
            return "The handler failed for good: a worker would dead-letter it at once."
        return (
            "The handler raised: a worker would retry it with backoff and dead-letter it "
            f"after {max_attempts} attempts."
        )
    return "Returned without settling: a worker would leave it to be delivered again."
