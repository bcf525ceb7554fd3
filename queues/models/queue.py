"""Queues as data: where a queue lives (type, connection, credentials) and how it delivers.

The secret (password, SQS secret key) is stored only as Fernet ciphertext (``queues.crypto``)
and shown back masked. ``DatabaseMessage`` holds the messages of ``database`` queues, the
embedded default; its claim logic lives in ``queues.backends.database`` and nowhere else.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from queues import crypto
from queues.errors import BadConfiguration

NAME_VALIDATOR = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$",
    "Use 1 to 80 letters, digits, '_', '.' or '-', starting with a letter or digit.",
)
# Kafka bootstrap servers: host:port[,host:port...]; IPv6 hosts in brackets.
_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?):\d{1,5}$")

SQS_MAX_VISIBILITY_TIMEOUT = 43_200
SQS_NAME_MAX = 80
SQS_DLQ_SUFFIX = "-dlq"
FIFO_SUFFIX = ".fifo"
KAFKA_MAX_PARTITIONS = 1000
DEFAULT_PARTITIONS = 3
MASK = "••••"

_Add = Callable[[str, str], None]


class QueueType(models.TextChoices):
    SQS = "sqs", "Amazon SQS"
    KAFKA = "kafka", "Apache Kafka"
    RABBITMQ = "rabbitmq", "RabbitMQ"
    DATABASE = "database", "Database (embedded)"


# Where a queue with a blank url connects: the deployment's own engine.
DEFAULT_URL_SETTING = {
    QueueType.SQS: "SQS_ENDPOINT_URL",
    QueueType.KAFKA: "KAFKA_BOOTSTRAP_SERVERS",
    QueueType.RABBITMQ: "AMQP_URL",
}


class Queue(models.Model):
    name = models.CharField(max_length=80, unique=True, validators=[NAME_VALIDATOR])
    type = models.CharField(max_length=20, choices=QueueType.choices, default=QueueType.DATABASE)
    url = models.CharField(
        max_length=500,
        blank=True,
        help_text="SQS endpoint URL, AMQP URL without credentials, or Kafka bootstrap servers "
        "(host:port,...). Blank: this deployment's own engine.",
    )
    region = models.CharField(max_length=50, blank=True, help_text="SQS only.")
    username = models.CharField(
        max_length=200, blank=True, help_text="User name, or the access key id for SQS."
    )
    secret_ciphertext = models.TextField(
        blank=True, editable=False, help_text="Password or secret key, Fernet-encrypted."
    )
    visibility_timeout = models.PositiveIntegerField(
        default=30,
        validators=[MaxValueValidator(SQS_MAX_VISIBILITY_TIMEOUT)],
        help_text="Seconds a fetched message stays hidden before it is delivered again "
        "(SQS and database queues).",
    )
    max_attempts = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(1000)]
    )
    fifo = models.BooleanField(default=False, help_text="SQS only; the name must end in .fifo.")
    partitions = models.PositiveIntegerField(
        null=True, blank=True, help_text=f"Kafka only (default {DEFAULT_PARTITIONS})."
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [("publish_queue", "Can publish messages to queues over the API")]

    def __str__(self) -> str:
        return self.name

    # -- the secret ---------------------------------------------------------------------------

    def set_secret(self, plaintext: str) -> None:
        self.secret_ciphertext = crypto.encrypt(plaintext) if plaintext else ""

    def get_secret(self) -> str:
        """The plaintext secret, for the backends only: never put it in a response or page."""
        return crypto.decrypt(self.secret_ciphertext) if self.secret_ciphertext else ""

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_ciphertext)

    @property
    def masked_secret(self) -> str:
        """``••••1234`` (last four shown only when the secret has at least 12 characters)."""
        if not self.secret_ciphertext:
            return ""
        try:
            secret = self.get_secret()
        except BadConfiguration:  # a page must still render when a key went missing
            return MASK
        return MASK + secret[-4:] if len(secret) >= 12 else MASK

    # -- connection ---------------------------------------------------------------------------

    @property
    def connection_url(self) -> str:
        """The queue's url, or the deployment's setting for its type when blank.

        For SQS an empty result means AWS itself (boto3 picks the region's endpoint).
        """
        if self.url or self.type == QueueType.DATABASE:
            return self.url
        setting = DEFAULT_URL_SETTING[QueueType(self.type)]
        value: str = getattr(settings, setting, "")
        if not value and self.type != QueueType.SQS:
            raise BadConfiguration(
                f"Queue {self.name!r} has no url and {setting} is not set for this deployment."
            )
        return value

    @property
    def effective_partitions(self) -> int:
        return self.partitions or DEFAULT_PARTITIONS

    # -- validation ---------------------------------------------------------------------------

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}

        def add(field: str, message: str) -> None:
            errors.setdefault(field, []).append(message)

        kind = self.type
        if self.fifo and kind != QueueType.SQS:
            add("fifo", "FIFO applies to SQS queues only.")
        if self.partitions is not None and kind != QueueType.KAFKA:
            add("partitions", "Partitions apply to Kafka queues only.")
        if self.region and kind != QueueType.SQS:
            add("region", "Region applies to SQS queues only.")
        if kind == QueueType.DATABASE:
            if self.url:
                add("url", "Database queues live in this deployment's database: leave url blank.")
            if self.username or self.secret_ciphertext:
                add("username", "Database queues take no credentials.")
            if self.visibility_timeout < 1:
                add("visibility_timeout", "The visibility timeout must be at least 1 second.")
        elif kind == QueueType.SQS:
            self._clean_sqs(add)
        elif kind == QueueType.KAFKA:
            self._clean_kafka(add)
        elif kind == QueueType.RABBITMQ:
            self._clean_rabbitmq(add)
        if errors:
            raise ValidationError(errors)

    def _clean_sqs(self, add: _Add) -> None:
        name = self.name or ""
        base = name.removesuffix(FIFO_SUFFIX)
        if self.fifo and not name.endswith(FIFO_SUFFIX):
            add("name", "An SQS FIFO queue's name must end in '.fifo'.")
        if not self.fifo and name.endswith(FIFO_SUFFIX):
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
        if self.visibility_timeout > SQS_MAX_VISIBILITY_TIMEOUT:
            add("visibility_timeout", "SQS visibility timeouts are 0 to 43200 seconds.")
        if self.url:
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                add("url", "An SQS endpoint URL starts with http:// or https:// and names a host.")
            elif parts.username or parts.password:
                add("url", "Put the access key id and secret key in their fields, not in the URL.")
        if bool(self.username) != bool(self.secret_ciphertext):
            add("username", "Give both the access key id and the secret key, or neither.")

    def _clean_kafka(self, add: _Add) -> None:
        if self.partitions is None:
            self.partitions = DEFAULT_PARTITIONS
        if not 1 <= self.partitions <= KAFKA_MAX_PARTITIONS:
            add("partitions", f"Kafka topics have 1 to {KAFKA_MAX_PARTITIONS} partitions here.")
        if self.url:
            servers = [s.strip() for s in self.url.split(",")]
            if not all(_HOST_PORT.match(s) for s in servers):
                add("url", "Kafka bootstrap servers are host:port, comma-separated.")
        if self.secret_ciphertext and not self.username:
            add("username", "A Kafka password needs a user name (SASL PLAIN).")

    def _clean_rabbitmq(self, add: _Add) -> None:
        if (self.name or "").startswith("amq."):
            add("name", "RabbitMQ reserves queue names starting with 'amq.'.")
        if self.url:
            parts = urlsplit(self.url)
            if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
                add("url", "An AMQP URL starts with amqp:// or amqps:// and names a host.")
            elif parts.username or parts.password:
                add("url", "Put the user name and password in their fields, not in the URL.")
        if self.secret_ciphertext and not self.username:
            add("username", "A password needs a user name.")


class MessageState(models.TextChoices):
    READY = "ready", "Ready"
    IN_FLIGHT = "in_flight", "In flight"
    # No "done": an acknowledged message's row is deleted at once (see backends/database.py).
    DEAD = "dead", "Dead letter"


class DatabaseMessage(models.Model):
    """One message of a ``database`` queue. Rows are claimed, leased and deleted on ack."""

    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="database_messages")
    message_id = models.UUIDField()
    body = models.JSONField()
    headers = models.JSONField(default=dict, blank=True)
    ordering_key = models.CharField(max_length=255, blank=True)
    state = models.CharField(
        max_length=16, choices=MessageState.choices, default=MessageState.READY
    )
    attempts = models.PositiveIntegerField(default=0, help_text="Deliveries so far.")
    available_at = models.DateTimeField(
        help_text="Ready: deliverable from then. In flight: the lease ends then."
    )
    lease_token = models.UUIDField(null=True, blank=True)
    lease_owner = models.CharField(max_length=200, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["queue", "message_id"], name="queues_dbmessage_unique_id"
            )
        ]
        indexes = [
            models.Index(fields=["queue", "state", "available_at"], name="queues_dbmessage_claim"),
            # The claim takes the oldest ids of one queue: without (queue, id) PostgreSQL walks
            # the primary key through every other queue's backlog (10 claims/s behind 240k
            # rows of another queue, in the bench).
            models.Index(fields=["queue", "id"], name="queues_dbmessage_order"),
        ]

    def __str__(self) -> str:
        return f"{self.queue_id}:{self.message_id} ({self.state})"
