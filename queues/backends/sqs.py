"""Amazon SQS (or a compatible server such as ElasticMQ) through boto3.

* Names: the queue is ``<name>``; its dead-letter queue is ``<name>-dlq`` (``<base>-dlq.fifo``
  for FIFO queues: SQS allows no '.' in names except the ``.fifo`` suffix). A redrive policy
  moves a message there after ``max_attempts`` receives (``maxReceiveCount``).
* Size: SQS counts the body plus every message attribute's name, type and value; the limit
  is 1 MiB (1,048,576 bytes) per message and per SendMessageBatch request (AWS raised it from
  256 KiB in August 2025; ElasticMQ's strict limits use 1 MiB too). Batches are cut at 10
  entries or 1 MiB, whichever comes first.
* Our message id travels as the ``quaymaster-message-id`` attribute and, on FIFO queues, as
  the ``MessageDeduplicationId`` (a re-sent message inside SQS's 5-minute window is dropped).
  ``MessageGroupId`` is the ordering key (``default`` without one).
* Headers are message attributes: at most 6 (SQS allows 10; our id, the body encoding, and a
  dead letter's reason and attempt take the others). A dead letter's reason is cut at 1 KiB.
* Bodies are text: bytes that are not UTF-8 travel base64-encoded, flagged by the
  ``quaymaster-encoding`` attribute, and are decoded on fetch.
* Retry and lease extension are ``ChangeMessageVisibility`` (so the receive count that redrive
  relies on keeps counting); the attempt number is ``ApproximateReceiveCount``.
* Administration lives in ``sqs_dead_letters.py``: reading the DLQ without losing a message
  (SQS has no peek), sending back, deleting, purging.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)
from django.conf import settings

from queues.backends.base import (
    HEADER_ATTEMPT,
    HEADER_MESSAGE_ID,
    HEADER_PREFIX,
    HEADER_REASON,
    MIB,
    Backend,
    CheckResult,
    Delivery,
    OutgoingMessage,
    PublishResult,
    QueueStats,
    SqsPublishResult,
)
from queues.backends.sqs_dead_letters import SqsDeadLetters
from queues.errors import (
    BadConfiguration,
    BadMessage,
    BrokerUnavailable,
    LeaseLost,
    MessageTooLarge,
    PublishFailed,
    QueueError,
    QueueMissing,
)
from queues.messages import DeadLetter
from queues.models import FIFO_SUFFIX, SQS_DLQ_SUFFIX, SQS_MAX_VISIBILITY_TIMEOUT, Queue

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

HEADER_ENCODING = "quaymaster-encoding"
MAX_BATCH = 10
MAX_ATTRIBUTES = 10
#: Our own attributes on a dead letter: message id, encoding, reason, attempt.
RESERVED_ATTRIBUTES = 4
MAX_REASON = 1024
MAX_WAIT_SECONDS = 20
DEFAULT_GROUP = "default"
DLQ_RETENTION_SECONDS = 14 * 24 * 3600  # the SQS maximum: dead letters wait for an admin

_MISSING = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NonExistentQueue"}
_BAD_CREDENTIALS = {
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSecurity",
    "MissingAuthenticationToken",
    "IncompleteSignature",
}
_LEASE = {"ReceiptHandleIsInvalid", "MessageNotInflight", "InvalidReceiptHandle"}
_GROUP_ID = re.compile(r"^[\x21-\x7e]{1,128}$")


@dataclass(frozen=True)
class SqsHandle:
    receipt_handle: str
    sqs_id: str
    group_id: str | None


class SqsBackend(Backend):
    engine = "SQS"
    max_message_bytes = 1 * MIB
    max_batch_bytes = 1 * MIB
    connect_timeout = 2.0
    #: Must exceed the longest long poll (20 s).
    read_timeout = 25.0

    def __init__(self, queue: Queue) -> None:
        super().__init__(queue)
        self._client: SQSClient | None = None
        self._urls: dict[str, str] = {}

    # -- names --------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return str(self.queue.name)

    @property
    def dlq_name(self) -> str:
        if self.queue.fifo:
            return self.name.removesuffix(FIFO_SUFFIX) + SQS_DLQ_SUFFIX + FIFO_SUFFIX
        return self.name + SQS_DLQ_SUFFIX

    # -- producer side ------------------------------------------------------------------------

    def provision(self) -> None:
        """Create (or update) the DLQ, then the queue with its redrive policy. Idempotent:
        CreateQueue returns an existing queue's URL; the changeable attributes are then set
        again, so edits to the visibility timeout or max attempts reach the engine."""
        fifo: dict[QueueAttributeNameType, str] = {"FifoQueue": "true"} if self.queue.fifo else {}
        with self._errors():
            dlq_url = self._create(self.dlq_name, fifo)
            self.client.set_queue_attributes(
                QueueUrl=dlq_url, Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)}
            )
            dlq_arn = self.client.get_queue_attributes(
                QueueUrl=dlq_url, AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]
            url = self._create(self.name, fifo)
            self.client.set_queue_attributes(
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
            with self._errors():
                self._url(self.name)
        except QueueMissing:
            return CheckResult(True, "connected; the queue does not exist yet", provisioned=False)
        return CheckResult(True, "connected", provisioned=True)

    def publish(self, messages: Sequence[OutgoingMessage]) -> list[PublishResult]:
        encoded = [self._encode(m) for m in messages]
        for message, (_, _, size) in zip(messages, encoded, strict=True):
            if size > self.max_message_bytes:
                raise MessageTooLarge(message.message_id, size, self.max_message_bytes, self.engine)
        published: dict[str, SqsPublishResult] = {}
        failed: dict[str, str] = {}
        with self._errors():
            url = self._url(self.name)
            for chunk in self._chunks(list(zip(messages, encoded, strict=True))):
                self._send_chunk(url, chunk, published, failed)
        if failed:
            raise PublishFailed(
                [published[m.message_id] for m in messages if m.message_id in published], failed
            )
        return [published[m.message_id] for m in messages]

    def message_size(self, message: OutgoingMessage) -> int:
        return self._encode(message)[2]

    def stats(self) -> QueueStats:
        with self._errors():
            main = self.client.get_queue_attributes(
                QueueUrl=self._url(self.name),
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )["Attributes"]
            dead = self.client.get_queue_attributes(
                QueueUrl=self._url(self.dlq_name),
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
        with self._errors():
            response = self.client.receive_message(
                QueueUrl=self._url(self.name),
                MaxNumberOfMessages=max(1, min(max_messages, MAX_BATCH)),
                WaitTimeSeconds=max(0, min(int(wait_seconds), MAX_WAIT_SECONDS)),
                MessageSystemAttributeNames=["ApproximateReceiveCount", "MessageGroupId"],
                MessageAttributeNames=["All"],
            )
        return [self._delivery(m) for m in response.get("Messages", [])]

    def ack(self, delivery: Delivery) -> None:
        handle = self._handle(delivery)
        with self._errors(lease=delivery):
            self.client.delete_message(
                QueueUrl=self._url(self.name), ReceiptHandle=handle.receipt_handle
            )

    def ack_many(self, deliveries: Sequence[Delivery]) -> list[QueueError | None]:
        """``DeleteMessageBatch``, ten at a time; an entry SQS refuses is that delivery's
        error (an expired receipt handle is ``LeaseLost``)."""
        results: list[QueueError | None] = [None] * len(deliveries)
        for start in range(0, len(deliveries), MAX_BATCH):
            chunk = range(start, min(start + MAX_BATCH, len(deliveries)))
            entries = [
                {"Id": str(i), "ReceiptHandle": self._handle(deliveries[i]).receipt_handle}
                for i in chunk
            ]
            try:
                with self._errors():
                    answer = self.client.delete_message_batch(
                        QueueUrl=self._url(self.name),
                        Entries=entries,  # type: ignore[arg-type]
                    )
            except QueueError as exc:
                for i in chunk:
                    results[i] = exc
                continue
            for failure in answer.get("Failed", []):
                i = int(failure["Id"])
                code, text = failure.get("Code", ""), failure.get("Message", "")
                if code in _LEASE or "receipt handle" in text.lower():
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

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Send a copy to the DLQ with the reason, then delete the original (at least once: a
        crash in between leaves the original, which is delivered again)."""
        handle = self._handle(delivery)
        attributes = self._attributes(delivery.message_id, delivery.headers)
        attributes[HEADER_REASON] = {
            "DataType": "String",
            "StringValue": reason[:MAX_REASON] or "-",
        }
        attributes[HEADER_ATTEMPT] = {"DataType": "Number", "StringValue": str(delivery.attempt)}
        body, encoded = _text_body(delivery.body)
        if encoded:
            attributes[HEADER_ENCODING] = {"DataType": "String", "StringValue": "base64"}
        extra: dict[str, str] = {}
        if self.queue.fifo:
            extra = {
                "MessageGroupId": handle.group_id or DEFAULT_GROUP,
                "MessageDeduplicationId": delivery.message_id,
            }
        with self._errors(lease=delivery):
            self.client.send_message(
                QueueUrl=self._url(self.dlq_name),
                MessageBody=body,
                MessageAttributes=attributes,
                **extra,  # type: ignore[arg-type]
            )
            self.client.delete_message(
                QueueUrl=self._url(self.name), ReceiptHandle=handle.receipt_handle
            )

    # -- administration (sqs_dead_letters.py says how SQS is read without a peek) ------------

    def dead_letters(self, limit: int = 50, keys: Iterable[str] | None = None) -> list[DeadLetter]:
        return SqsDeadLetters(self).peek(limit, keys)

    def redrive(self, message_ids: Iterable[str] | None = None) -> int:
        return SqsDeadLetters(self).redrive(message_ids)

    def delete_dead_letter(self, message_id: str) -> bool:
        return SqsDeadLetters(self).delete(message_id)

    def purge(self) -> None:
        """PurgeQueue: every message of the main queue, in-flight ones too (SQS's semantics);
        SQS does not say how many."""
        SqsDeadLetters(self).purge()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- helpers ------------------------------------------------------------------------------

    @property
    def client(self) -> SQSClient:
        if self._client is None:
            secret = self.queue.get_secret()
            session = boto3.session.Session()  # clients are not shared across threads
            self._client = session.client(
                "sqs",
                endpoint_url=self.queue.connection_url or None,
                region_name=self.queue.region or session.region_name or "us-east-1",
                aws_access_key_id=self.queue.username or None,
                aws_secret_access_key=secret or None,
                config=Config(
                    connect_timeout=self.connect_timeout,
                    read_timeout=self.read_timeout,
                    retries={"max_attempts": 2, "mode": "standard"},
                ),
            )
        return self._client

    def _create(self, name: str, attributes: dict[QueueAttributeNameType, str]) -> str:
        url = self.client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        self._urls[name] = url
        return url

    def _url(self, name: str) -> str:
        if name not in self._urls:
            self._urls[name] = self.client.get_queue_url(QueueName=name)["QueueUrl"]
        return self._urls[name]

    def _attributes(
        self, message_id: str, headers: dict[str, str] | Any
    ) -> dict[str, MessageAttributeValueTypeDef]:
        attributes: dict[str, MessageAttributeValueTypeDef] = {
            HEADER_MESSAGE_ID: {"DataType": "String", "StringValue": message_id}
        }
        for name, value in headers.items():
            attributes[name] = {"DataType": "String", "StringValue": value}
        return attributes

    def _encode(
        self, message: OutgoingMessage
    ) -> tuple[str, dict[str, MessageAttributeValueTypeDef], int]:
        """(body text, attributes, size as SQS counts it)."""
        if len(message.headers) + RESERVED_ATTRIBUTES > MAX_ATTRIBUTES:
            raise BadMessage(
                f"Message {message.message_id}: SQS carries at most "
                f"{MAX_ATTRIBUTES - RESERVED_ATTRIBUTES} headers (10 attributes, 4 are ours)."
            )
        body, encoded = _text_body(message.body_bytes())
        attributes = self._attributes(message.message_id, message.headers)
        if encoded:
            attributes[HEADER_ENCODING] = {"DataType": "String", "StringValue": "base64"}
        size = len(body.encode()) + sum(
            len(name.encode()) + len(a["DataType"]) + len(a.get("StringValue", "").encode())
            for name, a in attributes.items()
        )
        return body, attributes, size

    def _chunks(
        self, items: list[tuple[OutgoingMessage, tuple[str, Any, int]]]
    ) -> Iterator[list[tuple[OutgoingMessage, tuple[str, Any, int]]]]:
        chunk: list[tuple[OutgoingMessage, tuple[str, Any, int]]] = []
        total = 0
        for item in items:
            size = item[1][2]
            if chunk and (len(chunk) == MAX_BATCH or total + size > self.max_batch_bytes):
                yield chunk
                chunk, total = [], 0
            chunk.append(item)
            total += size
        if chunk:
            yield chunk

    def _send_chunk(
        self,
        url: str,
        chunk: list[tuple[OutgoingMessage, tuple[str, Any, int]]],
        published: dict[str, SqsPublishResult],
        failed: dict[str, str],
    ) -> None:
        entries: dict[str, Any] = {}
        for index, (message, (body, attributes, _)) in enumerate(chunk):
            entry: dict[str, Any] = {
                "Id": str(index),
                "MessageBody": body,
                "MessageAttributes": attributes,
            }
            if self.queue.fifo:
                entry["MessageGroupId"] = _group_id(message.ordering_key)
                entry["MessageDeduplicationId"] = message.message_id
            entries[str(index)] = (message, entry)
        pending = list(entries)
        for attempt in range(2):
            response = self.client.send_message_batch(
                QueueUrl=url, Entries=[entries[i][1] for i in pending]
            )
            for ok in response.get("Successful", []):
                message = entries[ok["Id"]][0]
                published[message.message_id] = SqsPublishResult(
                    message.message_id, ok["MessageId"]
                )
            retry = []
            for bad in response.get("Failed", []):
                message = entries[bad["Id"]][0]
                reason = f"{bad.get('Code', '?')}: {bad.get('Message', '')}".strip()
                if bad.get("SenderFault") or attempt == 1:
                    failed[message.message_id] = reason
                else:  # the service's fault: once more, for these entries only
                    retry.append(bad["Id"])
            if not retry:
                return
            pending = retry

    def _delivery(self, message: Any) -> Delivery:
        attributes = message.get("MessageAttributes", {})
        values = {name: a.get("StringValue", "") for name, a in attributes.items()}
        system = message.get("Attributes", {})
        body = message.get("Body", "")
        raw = base64.b64decode(body) if values.get(HEADER_ENCODING) == "base64" else body.encode()
        return Delivery(
            message_id=values.get(HEADER_MESSAGE_ID) or message["MessageId"],
            body=raw,
            attempt=int(system.get("ApproximateReceiveCount", 1)),
            headers={k: v for k, v in values.items() if not k.startswith(HEADER_PREFIX)},
            handle=SqsHandle(
                message["ReceiptHandle"], message["MessageId"], system.get("MessageGroupId")
            ),
            ordering_key=system.get("MessageGroupId"),
        )

    def _change_visibility(self, delivery: Delivery, seconds: float) -> None:
        handle = self._handle(delivery)
        timeout = max(0, min(math.ceil(seconds), SQS_MAX_VISIBILITY_TIMEOUT))
        with self._errors(lease=delivery):
            self.client.change_message_visibility(
                QueueUrl=self._url(self.name),
                ReceiptHandle=handle.receipt_handle,
                VisibilityTimeout=timeout,
            )

    def _handle(self, delivery: Delivery) -> SqsHandle:
        if not isinstance(delivery.handle, SqsHandle):
            raise TypeError("This delivery was not fetched by an SQS backend.")
        return delivery.handle

    @contextlib.contextmanager
    def _errors(self, lease: Delivery | None = None) -> Iterator[None]:
        """Translate botocore's errors into ours."""
        try:
            yield
        except QueueError:
            raise
        except NoCredentialsError as exc:
            raise BadConfiguration(f"SQS queue {self.name!r}: no AWS credentials.") from exc
        except (BotoConnectionError, HTTPClientError) as exc:
            raise BrokerUnavailable(f"SQS at {self._where()} is unreachable: {exc}") from exc
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "")
            message = error.get("Message", "") or str(exc)
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in _MISSING:
                raise QueueMissing(
                    f"SQS queue {self.name!r} (or its DLQ) does not exist: provision it."
                ) from exc
            if code in _BAD_CREDENTIALS:
                raise BadConfiguration(f"SQS refused the credentials: {message}") from exc
            if lease is not None and (code in _LEASE or "receipt handle" in message.lower()):
                raise LeaseLost(
                    f"Message {lease.message_id}: the receipt handle is no longer valid."
                ) from exc
            if status >= 500 or code in {
                "ServiceUnavailable",
                "ThrottlingException",
                "RequestThrottled",
            }:
                raise BrokerUnavailable(f"SQS failed: {code}: {message}") from exc
            raise QueueError(f"SQS refused the request: {code}: {message}") from exc
        except BotoCoreError as exc:
            raise BrokerUnavailable(f"SQS at {self._where()} failed: {exc}") from exc

    def _where(self) -> str:
        return self.queue.url or getattr(settings, "SQS_ENDPOINT_URL", "") or "AWS"


def _text_body(raw: bytes) -> tuple[str, bool]:
    """SQS bodies are Unicode text without most control characters: else send base64."""
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode(), True
    if (
        any(ord(c) < 0x20 and c not in "\t\n\r" for c in text)
        or "\ufffe" in text
        or "\uffff" in text
    ):
        return base64.b64encode(raw).decode(), True
    return text, False


def _group_id(ordering_key: str | None) -> str:
    """The ordering key as a MessageGroupId (128 printable ASCII at most; hashed otherwise)."""
    if not ordering_key:
        return DEFAULT_GROUP
    if _GROUP_ID.match(ordering_key):
        return ordering_key
    return hashlib.sha256(ordering_key.encode()).hexdigest()
