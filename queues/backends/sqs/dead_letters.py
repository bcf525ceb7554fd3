"""SQS dead letters: read, send back and delete the messages of ``<name>-dlq`` with boto3.

SQS has no peek. A scan receives from the DLQ with a visibility timeout of ``PEEK_SECONDS``
(so it can page past the first ten without meeting them again), and at the end makes every
message it did not delete visible again at once (``ChangeMessageVisibilityBatch`` to 0). A
scan that dies half-way leaves them hidden for ``PEEK_SECONDS`` at most; nothing is lost.

* Send back: SendMessage to the main queue with the same body and attributes, minus the dead
  letter's reason and attempt, then DeleteMessage from the DLQ (at least once: a failure in
  between leaves a copy in both). A new message starts a new ``ApproximateReceiveCount``,
  which is the attempt number: the count resets by itself. On FIFO queues the deduplication
  id is ``redrive-<DLQ copy's MessageId>``: the original id would be dropped as a duplicate
  within SQS's 5-minute window, and a repeated send-back of the same copy is not.
* A message SQS itself moved (the redrive policy, after ``maxReceiveCount`` receives) carries
  no reason attribute: its reason says so and its attempts are ``max_attempts``.
* FIFO limit: SQS hands out a message group's messages in order and holds the rest of the group
  while some are received, so a scan sees at most the first ten of each group. Sending back
  *all* works (each one is deleted as it goes); one message deep in a large group cannot be
  picked until the ones before it are handled.
* Purge is PurgeQueue on the main queue: SQS drops every message, in-flight ones included, and
  allows one purge per queue per 60 seconds. The DLQ is left alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from queues.backends.scan import SCAN_LIMIT, Deadline, all_found, attempts_from, wanted_set
from queues.backends.sqs.client import SqsClient
from queues.backends.sqs.encoding import DEFAULT_GROUP, attribute_values, body_of
from queues.errors import QueueError
from queues.messages import HEADER_ATTEMPT, HEADER_MESSAGE_ID, HEADER_REASON, DeadLetter

PEEK_SECONDS = 30
_DROPPED_ON_REDRIVE = {HEADER_REASON, HEADER_ATTEMPT}


class SqsDeadLetters:
    """A queue's DLQ read with its client; ``max_attempts`` is the queue's (what a message SQS
    moved by itself went through), ``user_headers`` turns attributes into the message's own."""

    def __init__(
        self,
        sqs: SqsClient,
        max_attempts: int,
        user_headers: Callable[[Mapping[str, Any]], dict[str, str]],
    ) -> None:
        self.sqs = sqs
        self.client = sqs.sqs
        self.max_attempts = max_attempts
        self.user_headers = user_headers

    # -- the four operations ------------------------------------------------------------------

    def peek(self, limit: int, keys: Iterable[str] | None) -> list[DeadLetter]:
        wanted = wanted_set(keys)
        found: list[DeadLetter] = []

        def visit(message: dict[str, Any]) -> bool:
            letter = self.letter(message)
            if letter.matches(wanted):
                found.append(letter)
            return False  # keep every message where it is

        self._scan(visit, done=lambda: len(found) >= limit or all_found(found, wanted))
        return found[:limit]

    def redrive(self, message_ids: Iterable[str] | None) -> int:
        wanted = wanted_set(message_ids)
        main_url = self.sqs.url(self.sqs.name)
        moved = 0

        def visit(message: dict[str, Any]) -> bool:
            nonlocal moved
            if not self.letter(message).matches(wanted):
                return False
            self._send_back(main_url, message)
            moved += 1
            return True

        self._scan(visit, done=lambda: wanted is not None and moved >= len(wanted))
        return moved

    def delete(self, message_id: str) -> bool:
        deleted = 0

        def visit(message: dict[str, Any]) -> bool:
            nonlocal deleted
            if self.letter(message).matches({message_id}):
                deleted += 1
                return True
            return False

        self._scan(visit, done=lambda: False)
        return deleted > 0

    def purge(self) -> None:
        with self.sqs.errors():
            self.client.purge_queue(QueueUrl=self.sqs.url(self.sqs.name))

    # -- scanning -----------------------------------------------------------------------------

    def _scan(self, visit: Callable[[dict[str, Any]], bool], done: Callable[[], bool]) -> None:
        """Receive every DLQ message once; ``visit`` returns True to have it deleted. The
        others are made visible again before returning, whatever happened."""
        url = self.sqs.url(self.sqs.dlq_name)
        kept: list[str] = []
        try:
            for message in self._receive_all(url, done):
                if visit(message):
                    with self.sqs.errors():
                        self.client.delete_message(
                            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"]
                        )
                else:
                    kept.append(message["ReceiptHandle"])
        finally:
            self._release(url, kept)

    def _receive_all(self, url: str, done: Callable[[], bool]) -> Iterator[Any]:
        deadline = Deadline()
        seen: set[str] = set()
        empty = 0
        while not done() and not deadline.passed and len(seen) < SCAN_LIMIT:
            with self.sqs.errors():
                response = self.client.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=10,
                    VisibilityTimeout=PEEK_SECONDS,
                    # A short poll first; one long poll (which asks every server) to be sure
                    # the queue is really empty.
                    WaitTimeSeconds=0 if empty == 0 else 1,
                    MessageSystemAttributeNames=[
                        "ApproximateReceiveCount",
                        "MessageGroupId",
                        "SentTimestamp",
                    ],
                    MessageAttributeNames=["All"],
                )
            messages = [m for m in response.get("Messages", []) if m["MessageId"] not in seen]
            if not messages:
                empty += 1
                if empty >= 2:
                    return
                continue
            empty = 0
            for message in messages:  # all of them: each received one must be visited
                seen.add(message["MessageId"])
                yield message

    def _release(self, url: str, receipt_handles: list[str]) -> None:
        """Make kept messages visible again now (best effort: else after PEEK_SECONDS)."""
        for start in range(0, len(receipt_handles), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for i, handle in enumerate(receipt_handles[start : start + 10])
            ]
            try:
                with self.sqs.errors():
                    self.client.change_message_visibility_batch(
                        QueueUrl=url,
                        Entries=entries,  # type: ignore[arg-type]
                    )
            except QueueError:  # they come back by themselves after PEEK_SECONDS
                return

    def _send_back(self, main_url: str, message: dict[str, Any]) -> None:
        attributes = {
            name: {"DataType": value["DataType"], "StringValue": value["StringValue"]}
            for name, value in message.get("MessageAttributes", {}).items()
            if name not in _DROPPED_ON_REDRIVE and "StringValue" in value
        }
        extra: dict[str, str] = {}
        if self.sqs.queue.fifo:
            system = message.get("Attributes", {})
            extra = {
                "MessageGroupId": system.get("MessageGroupId") or DEFAULT_GROUP,
                "MessageDeduplicationId": f"redrive-{message['MessageId']}",
            }
        with self.sqs.errors():
            self.client.send_message(
                QueueUrl=main_url,
                MessageBody=message.get("Body", ""),
                MessageAttributes=attributes,  # type: ignore[arg-type]
                **extra,  # type: ignore[arg-type]
            )

    # -- reading one ----------------------------------------------------------------------------

    def letter(self, message: dict[str, Any]) -> DeadLetter:
        values = attribute_values(message)
        raw = body_of(message, values)
        system = message.get("Attributes", {})
        reason = values.get(HEADER_REASON)
        at = None
        if reason is not None and system.get("SentTimestamp"):
            at = datetime.fromtimestamp(int(system["SentTimestamp"]) / 1000, tz=UTC)
        return DeadLetter(
            key=message["MessageId"],
            message_id=values.get(HEADER_MESSAGE_ID) or message["MessageId"],
            body=raw,
            reason=reason
            or f"SQS moved it here after {self.max_attempts} receive(s) without "
            "an acknowledgement (redrive policy).",
            attempts=attempts_from(values.get(HEADER_ATTEMPT))
            if reason is not None
            else self.max_attempts,
            headers=self.user_headers(values),
            ordering_key=system.get("MessageGroupId"),
            at=at,
            origin=f"SQS {self.sqs.dlq_name}, MessageId {message['MessageId']}",
        )
