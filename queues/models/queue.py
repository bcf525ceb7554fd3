"""Queues as data: where a queue lives (type, connection, credentials) and how it delivers.

The secret (password, SQS secret key) is stored only as Fernet ciphertext (``queues.crypto``)
and never shown back, not even in part: pages and the API say only whether one is set. What
differs per type (which options apply, how the connection is validated, which setting a blank
url falls back to) is asked of the type's backend class.
The backends sit above the models (the database backend's rows are a model), so the queues
app's ``ready`` hands ``queues.backends.backend_class`` to ``use_engines`` rather than this
module importing it. ``DatabaseMessage`` holds the messages of ``database`` queues, the
embedded default; its claim logic lives in ``queues.backends.database`` and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from queues import crypto
from queues.errors import BadConfiguration

NAME_VALIDATOR = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$",
    "Use 1 to 80 letters, digits, '_', '.' or '-', starting with a letter or digit.",
)

SQS_MAX_VISIBILITY_TIMEOUT = 43_200
SQS_NAME_MAX = 80
SQS_DLQ_SUFFIX = "-dlq"
FIFO_SUFFIX = ".fifo"
KAFKA_MAX_PARTITIONS = 1000
#: RabbitMQ accepts x-max-priority up to 255 and recommends at most 10 (each level costs).
RABBITMQ_MAX_PRIORITY = 10
DEFAULT_PARTITIONS = 3


class QueueType(models.TextChoices):
    SQS = "sqs", "Amazon SQS"
    KAFKA = "kafka", "Apache Kafka"
    RABBITMQ = "rabbitmq", "RabbitMQ"
    DATABASE = "database", "Database (embedded)"


class Engine(Protocol):
    """What a queue asks of its type's backend class (a ``queues.backends.Backend``)."""

    @property
    def queue_options(self) -> frozenset[str]: ...

    @property
    def url_setting(self) -> str: ...

    @property
    def url_required(self) -> bool: ...

    def clean_queue(self, queue: Any, add: Callable[[str, str], None], /) -> None: ...


def _engines_not_ready(queue_type: str) -> Engine:
    raise ImproperlyConfigured("The queues app is not ready: no backend classes yet.")


_engine_of: Callable[[str], Engine] = _engines_not_ready


def use_engines(engine_of: Callable[[str], Engine]) -> None:
    """Resolve queue types with ``engine_of`` (``queues.backends.backend_class``): the queues
    app's ``ready`` calls it, as the backends import the models and not the other way round."""
    global _engine_of
    _engine_of = engine_of


def engine_of(queue_type: str) -> Engine:
    """The backend class of ``queue_type``."""
    return _engine_of(queue_type)


#: Queue fields only some types take, and the error when a type does not.
OPTION_ERRORS = {
    "fifo": "FIFO applies to SQS queues only.",
    "partitions": "Partitions apply to Kafka queues only.",
    "region": "Region applies to SQS queues only.",
    "max_priority": "Max priority applies to RabbitMQ queues only (database queues always "
    "take the highest priority first; SQS and Kafka have no priorities).",
}


class Queue(crypto.EncryptedSecret, models.Model):
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
    max_priority = models.PositiveSmallIntegerField(
        default=0,
        help_text=f"RabbitMQ only: declare the queue with x-max-priority (1 to "
        f"{RABBITMQ_MAX_PRIORITY}) so higher-priority messages come first; 0: no priorities. "
        "RabbitMQ cannot change it on an existing queue: it takes a new queue.",
    )
    enabled = models.BooleanField(default=True)
    #: The handlers messages on this queue may name; None: any. Publishes naming another are
    #: refused (403 ``handler_not_allowed``), and so are links and test messages.
    allowed_handlers = models.JSONField(
        null=True,
        blank=True,
        help_text="The handlers messages on this queue may name (a list of names); empty: any.",
    )
    #: Pause consumption after this many handler failures in a row (None: never). The pause
    #: fields are nullable without defaults: SQLite adds them in place, keeping the triggers.
    pause_after_failures = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(1_000_000)],
        help_text="Stop fetching after this many consecutive handler failures, until an admin "
        "resumes the queue. Blank: never.",
    )
    #: Per-key order in the workers (``workers.ordering``); None: on when a table link feeds
    #: the queue. Nullable without a default, so SQLite adds it in place (triggers kept).
    ordered_by_key = models.BooleanField(
        null=True,
        blank=True,
        help_text="Messages with one ordering key run one at a time in arrival order in each "
        "worker (different keys in parallel). Blank: on when a table link feeds the queue.",
    )
    #: Set while consumption is paused (``queues.pausing``); workers fetch nothing meanwhile.
    paused_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Nullable without a default: adding it leaves SQLite's queue triggers in place.
    paused_reason = models.TextField(null=True, blank=True, editable=False)  # noqa: DJ001
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [("publish_queue", "Can publish messages to queues over the API")]

    def __str__(self) -> str:
        return self.name

    # -- handlers -----------------------------------------------------------------------------

    def allows_handler(self, name: str) -> bool:
        return self.allowed_handlers is None or name in self.allowed_handlers

    def orders_by_key(self) -> bool:
        """Whether workers keep per-key order: the queue's choice, else whether a table link
        feeds it (one query)."""
        if self.ordered_by_key is not None:
            return bool(self.ordered_by_key)
        return bool(self.pk) and self.links.exists()

    # -- connection ---------------------------------------------------------------------------

    @property
    def connection_url(self) -> str:
        """The queue's url, or the deployment's setting for its type when blank.

        For SQS an empty result means AWS itself (boto3 picks the region's endpoint).
        """
        backend = engine_of(self.type)
        setting = backend.url_setting
        if self.url or not setting:
            return self.url
        value: str = getattr(settings, setting, "")
        if not value and backend.url_required:
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

        backend = engine_of(self.type) if self.type in QueueType.values else None
        options = backend.queue_options if backend is not None else frozenset()
        given = {
            "fifo": bool(self.fifo),
            "partitions": self.partitions is not None,
            "region": bool(self.region),
            "max_priority": bool(self.max_priority),
        }
        for option, message in OPTION_ERRORS.items():
            if given[option] and option not in options:
                add(option, message)
        if backend is not None:
            backend.clean_queue(self, add)
        for problem in handler_list_problems(self.allowed_handlers):
            add("allowed_handlers", problem)
        if errors:
            raise ValidationError(errors)


MAX_ALLOWED_HANDLERS = 100
MAX_HANDLER_NAME = 200


def handler_list_problems(value: Any) -> list[str]:
    """What is wrong with an ``allowed_handlers`` value (None, or a list of handler names)."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return ["Give a list of handler names, or nothing to allow any handler."]
    problems = []
    if not value:
        problems.append("An empty list would refuse every message: leave it unset to allow any.")
    if len(value) > MAX_ALLOWED_HANDLERS:
        problems.append(f"At most {MAX_ALLOWED_HANDLERS} handlers.")
    bad = [
        v
        for v in value
        if not v.strip() or len(v) > MAX_HANDLER_NAME or any(ord(c) < 32 for c in v)
    ]
    if bad:
        problems.append(
            f"Not a handler name: {bad[0][:80]!r} (1 to {MAX_HANDLER_NAME} characters)."
        )
    if len(set(value)) != len(value):
        problems.append("A handler is listed twice.")
    return problems


class MessageState(models.TextChoices):
    READY = "ready", "Ready"
    IN_FLIGHT = "in_flight", "In flight"
    # No "done": an acknowledged message's row is deleted at once (see queues/backends/database).
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
    priority = models.PositiveSmallIntegerField(
        default=0, db_default=0, help_text="Claimed before lower priorities (then by id)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["queue", "message_id"], name="queues_dbmessage_unique_id"
            )
        ]
        indexes = [
            models.Index(fields=["queue", "state", "available_at"], name="queues_dbmessage_claim"),
            # The claim takes one queue's highest priority first, then the oldest ids: without
            # this index PostgreSQL walks the primary key through every other queue's backlog
            # (10 claims/s behind 240k rows of another queue, in the bench), and with
            # (queue, id) alone it would sort the whole backlog for each claim.
            models.Index(fields=["queue", "-priority", "id"], name="queues_dbmessage_priority"),
        ]

    def __str__(self) -> str:
        return f"{self.queue_id}:{self.message_id} ({self.state})"
