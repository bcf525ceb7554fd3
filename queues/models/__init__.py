"""The queues app's models: queues and the database queue's messages (``queue.py``); links,
the transactional outbox, relay leases and idempotency keys (``outbox.py``); message traces
(``trace.py``)."""

from queues.models.outbox import (
    IdempotencyKey,
    OutboxMessage,
    OutboxState,
    QueueLink,
    RelayLease,
)
from queues.models.queue import (
    DEFAULT_PARTITIONS,
    FIFO_SUFFIX,
    KAFKA_MAX_PARTITIONS,
    NAME_VALIDATOR,
    RABBITMQ_MAX_PRIORITY,
    SQS_DLQ_SUFFIX,
    SQS_MAX_VISIBILITY_TIMEOUT,
    SQS_NAME_MAX,
    DatabaseMessage,
    MessageState,
    Queue,
    QueueType,
)
from queues.models.replay import Replay, ReplayState
from queues.models.trace import MessageTrace, TraceSource

__all__ = [
    "DEFAULT_PARTITIONS",
    "FIFO_SUFFIX",
    "KAFKA_MAX_PARTITIONS",
    "NAME_VALIDATOR",
    "RABBITMQ_MAX_PRIORITY",
    "SQS_DLQ_SUFFIX",
    "SQS_MAX_VISIBILITY_TIMEOUT",
    "SQS_NAME_MAX",
    "DatabaseMessage",
    "IdempotencyKey",
    "MessageState",
    "MessageTrace",
    "OutboxMessage",
    "OutboxState",
    "Queue",
    "QueueLink",
    "QueueType",
    "RelayLease",
    "Replay",
    "ReplayState",
    "TraceSource",
]
