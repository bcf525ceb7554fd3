"""How the worker treats each engine where their semantics differ. Kept in one place and
visible, rather than emulating one engine's behaviour on another.

============  =================  ===============================  ==============================
engine        lease              handler returned without ack     shutdown: a delivery not done
============  =================  ===============================  ==============================
database      visibility timeout left to expire: the row is        ``retry_later(0)``: ready
              (``extend``)       claimed again after the timeout  again at once
sqs           visibility timeout left to expire: SQS shows it      ``retry_later(0)``:
              (``extend``)       again after the timeout          ChangeMessageVisibility 0
kafka         none               ``retry_later(visibility)`` (a   nothing: ``close`` leaves the
                                 copy on ``.retry``, then ack),   group without committing it,
                                 else it would pin the partition  so the group reads it again
                                 commit until a restart
rabbitmq      none (consumer     ``retry_later(visibility)``      nothing: ``close`` closes the
              timeout 30 min)    (``.retry`` queue, TTL, DLX      channel, RabbitMQ requeues it
                                 back), else it would hold a
                                 prefetch slot until a restart
============  =================  ===============================  ==============================

On the last attempt a message that was not acknowledged is dead-lettered by Kafka and RabbitMQ
workers (the database backend and SQS redrive do that themselves on the next receive).
"""

from __future__ import annotations

from dataclasses import dataclass

from queues.backends.base import Backend, Delivery
from queues.models import QueueType


@dataclass(frozen=True)
class EnginePolicy:
    #: Fetched messages are leased for the queue's visibility timeout and must be extended.
    leases: bool
    #: Shutdown gives unfinished deliveries back with ``retry_later(0)`` (else ``close`` does).
    release_explicitly: bool

    def prepare(self, backend: Backend, concurrency: int) -> None:
        """Tune the backend before the first fetch."""

    def release(self, backend: Backend, delivery: Delivery) -> None:
        if self.release_explicitly:
            backend.retry_later(delivery, 0)

    def not_acked(
        self, backend: Backend, delivery: Delivery, max_attempts: int, delay: float
    ) -> str:
        """Make an unsettled delivery come back; returns what was done, for the log."""
        if self.leases:
            return f"it is delivered again when its lease ends (within {delay:g}s)"
        if delivery.attempt >= max_attempts:
            backend.dead_letter(
                delivery,
                f"Not acknowledged on attempt {delivery.attempt} of {max_attempts} "
                "(the handler returned without ctx.ack()).",
            )
            return "it was the last attempt: dead-lettered"
        backend.retry_later(delivery, delay)
        return f"it is delivered again in {delay:g}s"


@dataclass(frozen=True)
class RabbitMqPolicy(EnginePolicy):
    def prepare(self, backend: Backend, concurrency: int) -> None:
        # basic.qos: RabbitMQ pushes at most twice as many unacknowledged messages as we can
        # run. The extra N wait in the backend's buffer (not fetched, so not started), so a
        # freed thread gets its next message without an ack-to-delivery round trip; with
        # qos = N the threads idled through that round trip (1.3k against 2.3k msg/s here).
        backend.prefetch = concurrency * 2  # type: ignore[attr-defined]


POLICIES: dict[str, EnginePolicy] = {
    QueueType.DATABASE: EnginePolicy(leases=True, release_explicitly=True),
    QueueType.SQS: EnginePolicy(leases=True, release_explicitly=True),
    QueueType.KAFKA: EnginePolicy(leases=False, release_explicitly=False),
    QueueType.RABBITMQ: RabbitMqPolicy(leases=False, release_explicitly=False),
}


def policy_for(queue_type: str) -> EnginePolicy:
    return POLICIES[queue_type]
