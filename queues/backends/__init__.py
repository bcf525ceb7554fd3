"""Backends by queue type. Modules are imported on first use, so the embedded default
(database queues) never loads an engine client it does not need."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from queues.backends.base import Backend
from queues.errors import BadConfiguration

if TYPE_CHECKING:
    from queues.models import Queue

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


def get_backend(queue: Queue) -> Backend:
    """A new backend for ``queue``; close it (or use it as a context manager) when done."""
    return backend_class(queue.type)(queue)


__all__ = ["Backend", "backend_class", "get_backend"]
