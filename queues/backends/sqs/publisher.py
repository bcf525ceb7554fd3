"""Publishing to SQS: batches of at most 10 entries and 1 MiB (per message and per request),
our message id as the FIFO deduplication id, the ordering key as the message group."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from queues.backends.sqs.client import SqsClient
from queues.backends.sqs.encoding import Encoded, group_id
from queues.messages import OutgoingMessage, SqsPublishResult

MAX_BATCH = 10

Item = tuple[OutgoingMessage, Encoded]


def chunks(items: list[Item], max_batch_bytes: int) -> Iterator[list[Item]]:
    """Batches of at most 10 entries and ``max_batch_bytes``."""
    chunk: list[Item] = []
    total = 0
    for item in items:
        size = item[1][2]
        if chunk and (len(chunk) == MAX_BATCH or total + size > max_batch_bytes):
            yield chunk
            chunk, total = [], 0
        chunk.append(item)
        total += size
    if chunk:
        yield chunk


def send_chunk(
    sqs: SqsClient,
    url: str,
    chunk: list[Item],
    fifo: bool,
    published: dict[str, SqsPublishResult],
    failed: dict[str, str],
) -> None:
    """SendMessageBatch one chunk: accepted ones into ``published``, refused ones (with why)
    into ``failed``; entries refused by the service's fault are sent once more."""
    entries: dict[str, Any] = {}
    for index, (message, (body, message_attributes, _)) in enumerate(chunk):
        entry: dict[str, Any] = {
            "Id": str(index),
            "MessageBody": body,
            "MessageAttributes": message_attributes,
        }
        if fifo:
            entry["MessageGroupId"] = group_id(message.ordering_key)
            entry["MessageDeduplicationId"] = message.message_id
        entries[str(index)] = (message, entry)
    pending = list(entries)
    for attempt in range(2):
        response = sqs.sqs.send_message_batch(
            QueueUrl=url, Entries=[entries[i][1] for i in pending]
        )
        for ok in response.get("Successful", []):
            message = entries[ok["Id"]][0]
            published[message.message_id] = SqsPublishResult(message.message_id, ok["MessageId"])
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
