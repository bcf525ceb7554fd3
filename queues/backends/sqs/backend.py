"""``SqsBackend``: an SQS queue and its DLQ behind the backend interface (the package's
docstring states the semantics)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from queues.backends.base import (
    MIB,
    AddError,
    Backend,
    PrioritySupport,
    QueueConfig,
    split_url,
)
from queues.backends.sqs.client import SqsClient, lease_lost
from queues.backends.sqs.dead_letters import SqsDeadLetters
from queues.backends.sqs.encoding import (
    DEFAULT_GROUP,
    HEADER_ENCODING,
    attribute_values,
    attributes,
    body_of,
    encode,
    text_body,
)
from queues.backends.sqs.publisher import MAX_BATCH, Item, chunks, send_chunk
from queues.errors import LeaseLost, PublishFailed, QueueError, QueueMissing
from queues.messages import (
    HEADER_ATTEMPT,
    HEADER_MESSAGE_ID,
    HEADER_REASON,
    CheckResult,
    Delivery,
    OutgoingMessage,
    PublishResult,
    QueueStats,
    SqsPublishResult,
)
from queues.models import FIFO_SUFFIX, SQS_DLQ_SUFFIX, SQS_MAX_VISIBILITY_TIMEOUT, SQS_NAME_MAX

if TYPE_CHECKING:
    from mypy_boto3_sqs.literals import QueueAttributeNameType

MAX_WAIT_SECONDS = 20
DLQ_RETENTION_SECONDS = 14 * 24 * 3600  # the SQS maximum: dead letters wait for an admin


@dataclass(frozen=True)
class SqsHandle:
    receipt_handle: str
    sqs_id: str
    group_id: str | None


class SqsBackend(Backend):
    engine = "SQS"
    max_message_bytes = 1 * MIB
    max_batch_bytes = 1 * MIB
    max_reason = 1024
    leases = True
    handle_type = SqsHandle
    queue_options = frozenset({"fifo", "region"})
    url_setting = "SQS_ENDPOINT_URL"  # unset: AWS itself (boto3 picks the region's endpoint)
    connect_timeout = 2.0
    #: Must exceed the longest long poll (20 s).
    read_timeout = 25.0

    def __init__(self, queue: QueueConfig) -> None:
        super().__init__(queue)
        self._client: SqsClient | None = None

    @classmethod
    def priority_support(cls, queue: QueueConfig) -> PrioritySupport:
        order = "in order per message group" if queue.fifo else "in no promised order"
        return PrioritySupport(
            False, f"SQS has no message priorities (this queue delivers {order}): ignored."
        )

    @classmethod
    def locks_keys(cls, queue: QueueConfig) -> bool:
        """A FIFO queue returns none of a group's later messages while one is in flight."""
        return bool(queue.fifo)

    @classmethod
    def clean_queue(cls, queue: QueueConfig, add: AddError) -> None:
        name = queue.name or ""
        base = name.removesuffix(FIFO_SUFFIX)
        if queue.fifo and not name.endswith(FIFO_SUFFIX):
            add("name", "An SQS FIFO queue's name must end in '.fifo'.")
        if getattr(queue, "ordered_by_key", None) and not queue.fifo:
            add(
                "ordered_by_key",
                "An SQS standard queue delivers in no promised order and carries no ordering "
                "key: per-key order needs a FIFO queue (its message group is the key).",
            )
        if not queue.fifo and name.endswith(FIFO_SUFFIX):
            add("fifo", "A name ending in '.fifo' is an SQS FIFO queue: tick FIFO.")
        if "." in base:
            add("name", "SQS queue names may not contain '.' (except the '.fifo' suffix).")
        if len(name) + len(SQS_DLQ_SUFFIX) > SQS_NAME_MAX:
            add(
                "name",
                f"SQS queue names are at most {SQS_NAME_MAX - len(SQS_DLQ_SUFFIX)} characters "
                f"here, so that the dead-letter queue '<name>{SQS_DLQ_SUFFIX}' fits in "
                f"{SQS_NAME_MAX}.",
            )
        if queue.visibility_timeout > SQS_MAX_VISIBILITY_TIMEOUT:
            add("visibility_timeout", "SQS visibility timeouts are 0 to 43200 seconds.")
        if queue.url:
            parts = split_url(queue.url)
            if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
                add("url", "An SQS endpoint URL starts with http:// or https:// and names a host.")
            elif parts.username or parts.password:
                add("url", "Put the access key id and secret key in their fields, not in the URL.")
        if bool(queue.username) != queue.has_secret:
            add("username", "Give both the access key id and the secret key, or neither.")

    # -- names and the client -----------------------------------------------------------------

    @property
    def sqs(self) -> SqsClient:
        """The queue's client, made on first use (so a timeout shortened after construction,
        as ``services.live_stats`` does, still applies)."""
        if self._client is None:
            self._client = SqsClient(self.queue, self.connect_timeout, self.read_timeout)
        return self._client

    @property
    def name(self) -> str:
        return str(self.queue.name)

    @property
    def dlq_name(self) -> str:
        return self.sqs.dlq_name

    # -- producer side ------------------------------------------------------------------------

    def provision(self) -> None:
        """Create (or update) the DLQ, then the queue with its redrive policy. Idempotent:
        CreateQueue returns an existing queue's URL; the changeable attributes are then set
        again, so edits to the visibility timeout or max attempts reach the engine."""
        fifo: dict[QueueAttributeNameType, str] = {"FifoQueue": "true"} if self.queue.fifo else {}
        sqs = self.sqs
        with sqs.errors():
            dlq_url = sqs.create(self.dlq_name, fifo)
            sqs.sqs.set_queue_attributes(
                QueueUrl=dlq_url, Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)}
            )
            dlq_arn = sqs.sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            url = sqs.create(self.name, fifo)
            sqs.sqs.set_queue_attributes(
                QueueUrl=url,
                Attributes={
                    "VisibilityTimeout": str(self.queue.visibility_timeout),
                    "RedrivePolicy": json.dumps(
                        {
                            "deadLetterTargetArn": dlq_arn,
                            "maxReceiveCount": str(self.queue.max_attempts),
                        }
                    ),
                },
            )

    def check(self) -> CheckResult:
        try:
            with self.sqs.errors():
                self.sqs.url(self.name)
        except QueueMissing:
            return CheckResult(True, "connected; the queue does not exist yet", provisioned=False)
        return CheckResult(True, "connected", provisioned=True)

    def message_size(self, message: OutgoingMessage) -> int:
        return encode(message)[2]

    def publish(self, messages: Sequence[OutgoingMessage]) -> list[PublishResult]:
        encoded = [encode(m) for m in messages]  # encoded once: sized and sent
        self.check_sizes(messages, [size for _, _, size in encoded])
        published: dict[str, SqsPublishResult] = {}
        failed: dict[str, str] = {}
        with self.sqs.errors():
            url = self.sqs.url(self.name)
            for chunk in self._chunks(list(zip(messages, encoded, strict=True))):
                send_chunk(self.sqs, url, chunk, self.queue.fifo, published, failed)
        if failed:
            raise PublishFailed(
                [published[m.message_id] for m in messages if m.message_id in published], failed
            )
        return [published[m.message_id] for m in messages]

    def stats(self) -> QueueStats:
        sqs = self.sqs
        with sqs.errors():
            main = sqs.sqs.get_queue_attributes(
                QueueUrl=sqs.url(self.name),
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )["Attributes"]
            dead = sqs.sqs.get_queue_attributes(
                QueueUrl=sqs.url(self.dlq_name),
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
        return QueueStats(
            depth=int(main.get("ApproximateNumberOfMessages", 0))
            + int(main.get("ApproximateNumberOfMessagesDelayed", 0)),
            in_flight=int(main.get("ApproximateNumberOfMessagesNotVisible", 0)),
            # Dead letters being read (by an admin, say) still count.
            dead_letters=int(dead.get("ApproximateNumberOfMessages", 0))
            + int(dead.get("ApproximateNumberOfMessagesNotVisible", 0)),
        )

    # -- consumer side ------------------------------------------------------------------------

    def fetch(self, max_messages: int = 10, wait_seconds: float = 1.0) -> list[Delivery]:
        """One ReceiveMessage: at most 10 messages, long polling for the whole seconds of
        ``wait_seconds`` (at most 20; under 1 s is a short poll)."""
        with self.sqs.errors():
            response = self.sqs.sqs.receive_message(
                QueueUrl=self.sqs.url(self.name),
                MaxNumberOfMessages=max(1, min(max_messages, MAX_BATCH)),
                WaitTimeSeconds=max(0, min(int(wait_seconds), MAX_WAIT_SECONDS)),
                MessageSystemAttributeNames=["ApproximateReceiveCount", "MessageGroupId"],
                MessageAttributeNames=["All"],
            )
        return [self._delivery(m) for m in response.get("Messages", [])]

    def ack(self, delivery: Delivery) -> None:
        handle: SqsHandle = self.handle(delivery)
        with self.sqs.errors(lease=delivery):
            self.sqs.sqs.delete_message(
                QueueUrl=self.sqs.url(self.name), ReceiptHandle=handle.receipt_handle
            )

    def ack_many(self, deliveries: Sequence[Delivery]) -> list[QueueError | None]:
        """``DeleteMessageBatch``, ten at a time; an entry SQS refuses is that delivery's
        error (an expired receipt handle is ``LeaseLost``)."""
        results: list[QueueError | None] = [None] * len(deliveries)
        for start in range(0, len(deliveries), MAX_BATCH):
            chunk = range(start, min(start + MAX_BATCH, len(deliveries)))
            entries = [
                {"Id": str(i), "ReceiptHandle": self.handle(deliveries[i]).receipt_handle}
                for i in chunk
            ]
            try:
                with self.sqs.errors():
                    answer = self.sqs.sqs.delete_message_batch(
                        QueueUrl=self.sqs.url(self.name),
                        Entries=entries,  # type: ignore[arg-type]
                    )
            except QueueError as exc:
                for i in chunk:
                    results[i] = exc
                continue
            for failure in answer.get("Failed", []):
                i = int(failure["Id"])
                code, text = failure.get("Code", ""), failure.get("Message", "")
                if lease_lost(code, text):
                    results[i] = LeaseLost(
                        f"Message {deliveries[i].message_id}: the receipt handle is no longer "
                        "valid."
                    )
                else:
                    results[i] = QueueError(f"SQS refused the delete: {code}: {text}")
        return results

    def retry_later(self, delivery: Delivery, delay_seconds: float) -> None:
        """Hide the message for ``delay_seconds`` (at most 12 h, SQS's limit); its next receive
        counts as the next attempt, and redrive dead-letters it after ``max_attempts``."""
        self._change_visibility(delivery, delay_seconds)

    def extend(self, delivery: Delivery, seconds: float) -> None:
        self._change_visibility(delivery, seconds)

    @property
    def dead_letter_destination(self) -> str:
        return self.dlq_name

    def dead_letter_headers(self, delivery: Delivery, reason: str) -> dict[str, str]:
        headers = super().dead_letter_headers(delivery, reason)
        headers[HEADER_REASON] = headers[HEADER_REASON] or "-"  # SQS refuses empty values
        return headers

    def publish_copy(
        self,
        delivery: Delivery,
        destination: str,
        headers: Mapping[str, str],
        delay_seconds: float | None = None,
    ) -> None:
        """SendMessage with the same body (``dead_letter`` then deletes the original)."""
        handle: SqsHandle = self.handle(delivery)
        copy = attributes(delivery.message_id, headers)
        if HEADER_ATTEMPT in copy:
            copy[HEADER_ATTEMPT] = {"DataType": "Number", "StringValue": headers[HEADER_ATTEMPT]}
        body, encoded = text_body(delivery.body)
        if encoded:
            copy[HEADER_ENCODING] = {"DataType": "String", "StringValue": "base64"}
        extra: dict[str, str] = {}
        if self.queue.fifo:
            extra = {
                "MessageGroupId": handle.group_id or DEFAULT_GROUP,
                "MessageDeduplicationId": delivery.message_id,
            }
        with self.sqs.errors(lease=delivery):
            self.sqs.sqs.send_message(
                QueueUrl=self.sqs.url(destination),
                MessageBody=body,
                MessageAttributes=copy,
                **extra,  # type: ignore[arg-type]
            )

    # -- administration (dead_letters.py says how SQS is read without a peek) ----------------

    def dead_letter_store(self) -> SqsDeadLetters:
        return SqsDeadLetters(self.sqs, self.queue.max_attempts, self.user_headers)

    def purge(self) -> None:
        """PurgeQueue: every message of the main queue, in-flight ones too (SQS's semantics);
        SQS does not say how many."""
        self.dead_letter_store().purge()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    # -- helpers ------------------------------------------------------------------------------

    def _chunks(self, items: list[Item]) -> Iterator[list[Item]]:
        return chunks(items, self.max_batch_bytes)

    def _delivery(self, message: Any) -> Delivery:
        values = attribute_values(message)
        system = message.get("Attributes", {})
        return Delivery(
            message_id=values.get(HEADER_MESSAGE_ID) or message["MessageId"],
            body=body_of(message, values),
            attempt=int(system.get("ApproximateReceiveCount", 1)),
            headers=self.user_headers(values),
            handle=SqsHandle(
                message["ReceiptHandle"], message["MessageId"], system.get("MessageGroupId")
            ),
            ordering_key=system.get("MessageGroupId"),
        )

    def _change_visibility(self, delivery: Delivery, seconds: float) -> None:
        handle: SqsHandle = self.handle(delivery)
        timeout = max(0, min(math.ceil(seconds), SQS_MAX_VISIBILITY_TIMEOUT))
        with self.sqs.errors(lease=delivery):
            self.sqs.sqs.change_message_visibility(
                QueueUrl=self.sqs.url(self.name),
                ReceiptHandle=handle.receipt_handle,
                VisibilityTimeout=timeout,
            )
