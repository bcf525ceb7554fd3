"""Message traces, the queues' side: capturing where a published message went, and finding a
message by any of its ids.

The relay writes a batch's traces in the statement that marks it published
(``queues.dialects``); the publish API writes its batch's with one bulk insert after the
broker answered (``record_published``). ``QUAYMASTER_TRACE_MESSAGES`` (on by default) turns
both off, which ``make bench`` uses to measure what they cost.

``resolve`` reads what a person pastes: our message id (a UUID), an engine's own id (SQS's
MessageId, RabbitMQ's AMQP message-id, a database queue's row id), or Kafka's
``topic:partition:offset`` (the topic is the queue's name).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Sequence

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from queues.dialects import dialect
from queues.messages import PublishResult
from queues.models import MessageTrace, Queue, QueueType, TraceSource

#: Most traces one search answers (an engine's id may repeat across queues).
MAX_MATCHES = 20
API_COLUMNS = ("message_id", "queue_id", "source", "broker_id", "published_at", "table")
_KAFKA_POSITION = re.compile(r"^(?P<topic>.+):(?P<partition>\d{1,9}):(?P<offset>\d{1,18})$")


def tracing() -> bool:
    return bool(getattr(settings, "QUAYMASTER_TRACE_MESSAGES", True))


def record_published(queue: Queue, results: Sequence[PublishResult]) -> None:
    """Keep the traces of messages the publish API sent (no record: an API message is not a
    record's event, whatever its body says)."""
    if not results or not tracing():
        return
    now = timezone.now()
    prep = MessageTrace._meta.get_field("message_id").get_db_prep_value
    source = TraceSource.API.value
    # Plain tuples through the dialect (COPY on PostgreSQL): model instances for bulk_create
    # cost a third of a batch publish's time. The ids are new, so nothing can conflict.
    rows = (
        (prep(r.message_id, connection), queue.pk, source, r.broker_key[:200], now, "")
        for r in results
    )
    with transaction.atomic(), connection.cursor() as cursor:
        dialect().insert_many(cursor, MessageTrace._meta.db_table, API_COLUMNS, rows)


def as_message_id(text: str) -> str | None:
    """``text`` as our canonical message id, or None when it is no UUID."""
    try:
        return str(uuid.UUID(text.strip()))
    except (ValueError, AttributeError):
        return None


def resolve(text: str) -> list[str]:
    """The message ids ``text`` may name, newest first: itself when it is a UUID (traced or
    not: the lifecycle log may know it), else the traces whose engine id it is."""
    text = text.strip()[:300]
    if not text:
        return []
    found = as_message_id(text)
    traces = MessageTrace.objects.filter(broker_id=text[:200])
    position = _KAFKA_POSITION.match(text)
    if position is not None:
        queues = Queue.objects.filter(name=position["topic"], type=QueueType.KAFKA)
        key = f"{int(position['partition'])}:{int(position['offset'])}"
        traces = traces | MessageTrace.objects.filter(
            queue_id__in=queues.values("pk"), broker_id=key
        )
    rows = traces.order_by("-published_at").values_list("message_id", flat=True)[:MAX_MATCHES]
    ids = [str(message_id) for message_id in rows]
    # A UUID is ours (RabbitMQ's id is ours too) or SQS's MessageId: both are looked for.
    if found is not None and found not in ids:
        ids.insert(0, found)
    return ids


def traces_of(message_ids: Sequence[str]) -> dict[str, MessageTrace]:
    """The traces of ``message_ids`` by id (those that have one)."""
    wanted = [m for m in (as_message_id(i) for i in message_ids) if m is not None]
    found = MessageTrace.objects.filter(message_id__in=wanted)
    return {str(trace.message_id): trace for trace in found}


def prune_traces(before: dt.datetime) -> int:
    """Delete traces published before ``before`` (the lifecycle log's retention)."""
    deleted, _ = MessageTrace.objects.filter(published_at__lt=before).delete()
    return deleted
