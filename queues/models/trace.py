"""Message traces: where a published message went, kept for the lifecycle log's retention.

One row per published message, written in bulk where the broker's answer comes back: by the
relay in the statement that marks a batch published (``queues.dialects``), by the publish API
after the broker took the batch. It holds what the outbox forgets after
``QUAYMASTER_OUTBOX_RETENTION_HOURS`` and what an API-published message never had: the
engine's own id (``broker_id``, searchable), when it was published, and for a record event the
record and version it describes. Everything after publish (attempts, log lines, errors) is
the lifecycle log's (``workers.models.LifecycleEvent``), joined by message id when read.

A row is deleted with the lifecycle log (``workers.events.prune_events``); a republished
message (at least once) keeps its first row and takes the newest broker id.
"""

from __future__ import annotations

from django.db import models


class TraceSource(models.TextChoices):
    OUTBOX = "outbox", "Record event (outbox)"
    API = "api", "Publish API"


class MessageTrace(models.Model):
    """``broker_id``: SQS's MessageId, Kafka's ``partition:offset`` (the topic is the
    queue's), RabbitMQ's AMQP message-id, the database queue's row id. ``queue`` is no
    constraint: a trace outlives its queue until pruned."""

    message_id = models.UUIDField(primary_key=True)
    queue = models.ForeignKey(
        "queues.Queue", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    source = models.CharField(max_length=8, choices=TraceSource.choices)
    broker_id = models.CharField(max_length=200)
    published_at = models.DateTimeField()
    table = models.CharField(max_length=63, blank=True, help_text="A record event's table slug.")
    record_id = models.BigIntegerField(null=True, blank=True)
    version = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        # Each index is paid by every publish; pruning scans (it runs a few times a day).
        indexes = [
            models.Index(fields=["broker_id"], name="queues_trace_broker_id"),
            models.Index(
                fields=["record_id"],
                name="queues_trace_record",
                condition=models.Q(record_id__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.message_id} → {self.queue_id} ({self.broker_id})"
