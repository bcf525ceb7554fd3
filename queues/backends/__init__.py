"""Backends by queue type, one package each. Packages are imported on first use, so the
embedded default (database queues) never loads an engine client it does not need; what differs
per engine is asked of its class (``backend_class(queue.type).leases``, ``.thread_bound``,
``.clean_queue`` …), never switched on the queue type elsewhere."""

from __future__ import annotations

from importlib import import_module

from queues.backends.base import Backend, QueueConfig
from queues.errors import BadConfiguration

BACKENDS: dict[str, str] = {
    "sqs": "queues.backends.sqs.SqsBackend",
    "kafka": "queues.backends.kafka.KafkaBackend",
    "rabbitmq": "queues.backends.rabbitmq.RabbitMqBackend",
    "database": "queues.backends.database.DatabaseBackend",
}


def backend_class(queue_type: str) -> type[Backend]:
    try:
        dotted = BACKENDS[queue_type]
    except KeyError:
        raise BadConfiguration(f"No backend for queue type {queue_type!r}.") from None
    module, _, name = dotted.rpartition(".")
    cls: type[Backend] = getattr(import_module(module), name)
    return cls


def get_backend(queue: QueueConfig) -> Backend:
    """A new backend for ``queue``; close it (or use it as a context manager) when done."""
    return backend_class(queue.type)(queue)


__all__ = ["Backend", "backend_class", "get_backend"]
