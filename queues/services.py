"""What the API, the back-office and the relay call: one path for every queue operation.

Two ways to a backend: a fresh one for a one-off call (``with get_backend(queue) as backend``,
closed at the end of the block) and the process's cache for what publishes over and over
(``publishers``, see ``queues.backends.cache``)."""

from __future__ import annotations

import atexit
import contextlib
import uuid
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit import trail
from queues.backends import get_backend
from queues.backends.cache import BackendCache
from queues.errors import HandlerNotAllowed, QueueError, UnknownHandler
from queues.messages import CheckResult, OutgoingMessage, PublishResult, QueueStats
from queues.models import OutboxMessage, OutboxState, Queue, QueueLink
from queues.outbox import notify_at_commit
from zstorage.errors import QueryError
from zstorage.query import compile_query


def create_queue(*, secret: str = "", **fields: Any) -> Queue:
    """Validate (``full_clean``: raises ValidationError) and save a queue; ``secret`` is
    encrypted before it touches the database."""
    queue = Queue(**fields)
    queue.set_secret(secret)
    queue.full_clean()
    with transaction.atomic():
        queue.save()
        trail.record("queue.create", queue, after=settings_of(queue))
    return queue


#: What the audit trail keeps of a queue's settings (the secret as whether one is set).
AUDITED_FIELDS = (
    "name", "type", "url", "region", "username", "visibility_timeout", "max_attempts", "fifo",
    "partitions", "max_priority", "enabled", "allowed_handlers",
)  # fmt: skip


def settings_of(queue: Queue) -> dict[str, Any]:
    """The queue's settings as the audit trail keeps them; the secret only as set or not
    (masked by the trail either way)."""
    return {**trail.snapshot(queue, AUDITED_FIELDS), "secret": "set" if queue.has_secret else ""}


#: The fields that say where a queue's secret is sent and whose it is.
CONNECTION_FIELDS = ("type", "url", "username")
SECRET_AGAIN = (
    "The {fields} changed: send the secret again (or remove it), so that the stored one never "
    "goes to a server it was not typed for."
)


def secret_required(queue: Queue, fields: Mapping[str, Any], secret: str | None) -> str:
    """Why this change needs the secret in the same request, or "" when it does not: a stored
    secret stays only while its type, url and username stay. Whoever may edit a queue but does
    not know its secret cannot point it at a listener of theirs and press "check"."""
    if secret is not None or queue.pk is None or not queue.has_secret:
        return ""
    moved = [n for n in CONNECTION_FIELDS if n in fields and fields[n] != getattr(queue, n)]
    if not moved:
        return ""
    return SECRET_AGAIN.format(fields=" and ".join(", ".join(moved).rsplit(", ", 1)))


def update_queue(queue: Queue, *, secret: str | None = None, **fields: Any) -> Queue:
    """Change fields; ``secret=None`` keeps the stored secret, ``""`` clears it. Changing the
    type, url or username of a queue with a stored secret needs ``secret`` too (a
    ValidationError keyed ``secret`` otherwise, with nothing changed): see
    ``secret_required``."""
    problem = secret_required(queue, fields, secret)
    if problem:
        raise ValidationError({"secret": [problem]})
    before = settings_of(queue)
    for name, value in fields.items():
        setattr(queue, name, value)
    if secret is not None:
        queue.set_secret(secret)
    queue.full_clean()
    with transaction.atomic():
        queue.save()
        after = settings_of(queue)
        details = {"secret_changed": True} if secret is not None else None
        trail.record("queue.change", queue, before=before, after=after, details=details)
    return queue


def resolve_queue(id_or_name: int | str) -> Queue:
    """The queue with this primary key or name (``Queue.DoesNotExist`` otherwise). A digits-only
    string is tried as an id first, then as a name."""
    if isinstance(id_or_name, int):
        return Queue.objects.get(pk=id_or_name)
    if id_or_name.isdigit():
        with contextlib.suppress(Queue.DoesNotExist):
            return Queue.objects.get(pk=int(id_or_name))
    return Queue.objects.get(name=id_or_name)


#: The process's publishing backends (the publish API and the back-office's test message).
publishers = BackendCache()
atexit.register(publishers.close)


def provision(queue: Queue) -> None:
    with get_backend(queue) as backend:
        backend.provision()


def check_connection(queue: Queue) -> CheckResult:
    with get_backend(queue) as backend:
        return backend.check()


def queue_stats(queue: Queue) -> QueueStats:
    with get_backend(queue) as backend:
        return backend.stats()


def as_outgoing(message: OutgoingMessage | Mapping[str, Any]) -> OutgoingMessage:
    """A JSON object becomes a message with a fresh id; an OutgoingMessage stays as it is."""
    if isinstance(message, OutgoingMessage):
        return message
    return OutgoingMessage(str(uuid.uuid4()), dict(message))


def publish(
    queue: Queue, messages: Sequence[OutgoingMessage | Mapping[str, Any]]
) -> list[PublishResult]:
    """Publish a batch with a short-lived backend. Database queues insert in the caller's
    transaction (atomic on their own otherwise); the relay keeps its own backend instead."""
    outgoing = [as_outgoing(m) for m in messages]
    with get_backend(queue) as backend, transaction.atomic():
        return backend.publish(outgoing)


# -- what the back-office adds: live figures, purge, switching a queue, the outbox ------------


#: Backend attributes that bound a network call, shortened by ``live_stats(timeout=...)``.
TIMEOUTS = ("connect_timeout", "read_timeout", "confirm_timeout")


@dataclass(frozen=True)
class LiveStats:
    """A queue's figures as its engine reports them now, or why it could not answer."""

    stats: QueueStats | None
    problem: str = ""
    code: str = ""

    @property
    def ok(self) -> bool:
        return self.stats is not None


def live_stats(queue: Queue, timeout: float | None = None) -> LiveStats:
    """``stats()`` for a page: an engine that does not answer (or refuses) is a value to show,
    not an error; ``timeout`` shortens the backend's connect and read timeouts so a dashboard
    does not wait the full publishing timeouts on a broker that is down. Dead letters an admin
    already settled but the engine still counts (Kafka) are left out."""
    try:
        with get_backend(queue) as backend:
            if timeout is not None:
                for name in TIMEOUTS:
                    if hasattr(backend, name):
                        setattr(backend, name, min(float(getattr(backend, name)), timeout))
            stats = backend.stats()
            settled = backend.settled_dead_letters() if stats.dead_letters else 0
    except QueueError as exc:
        return LiveStats(None, exc.message, exc.code)
    if settled:
        stats = replace(stats, dead_letters=max(0, (stats.dead_letters or 0) - settled))
    return LiveStats(stats)


def purge(queue: Queue) -> int | None:
    """Drop every message waiting in the queue (see each backend's ``purge``)."""
    with get_backend(queue) as backend:
        dropped = backend.purge()
    trail.record("queue.purge", queue, details={"dropped": dropped})
    return dropped


def set_enabled(queue: Queue, enabled: bool) -> Queue:
    """A disabled queue refuses API publishes, gets no outbox rows from its table links, and
    the relay holds back the rows it already has."""
    queue.enabled = enabled
    with transaction.atomic():
        queue.save(update_fields=["enabled", "updated_at"])
        action = "queue.enable" if enabled else "queue.disable"
        trail.record(action, queue, before={"enabled": not enabled}, after={"enabled": enabled})
    return queue


def retry_outbox(queue: Queue | None = None) -> tuple[int, int]:
    """Make the outbox try again now: pending rows become due, failed rows pending again with
    their attempts reset. Returns (pending made due, failed requeued). Wakes the relay."""
    rows = OutboxMessage.objects.all() if queue is None else queue.outbox.all()
    now = timezone.now()
    with transaction.atomic():
        due = rows.filter(state=OutboxState.PENDING).update(available_at=now)
        requeued = rows.filter(state=OutboxState.FAILED).update(
            state=OutboxState.PENDING, attempts=0, available_at=now
        )
        if due or requeued:
            notify_at_commit()
        trail.record(
            "outbox.retry",
            queue,
            details={"made_due": due, "requeued": requeued, "all_queues": queue is None},
        )
    return due, requeued


#: Handlers that act with more than a publisher's rights (starting jobs, running a job's
#: instances): a publisher's message may name one only on a queue whose allow-list names it.
#: The apps above that own such handlers reserve them when they load (``jobs.apps``).
RESERVED_HANDLERS: dict[str, str] = {}


def reserve_handler(name: str, does: str) -> None:
    """Keep ``name`` from publishers unless a queue allows it by name; ``does`` says why
    (e.g. "starts jobs"), in the refusal."""
    RESERVED_HANDLERS[name] = does


#: The handlers this deployment registers, asked of the app that keeps them (``workers`` sets
#: it when it loads); None: not known here, and every name passes.
_registered: Callable[[], Container[str]] | None = None


def know_handlers(registered: Callable[[], Container[str]]) -> None:
    global _registered
    _registered = registered


def unknown_handlers(queue: Queue, handlers: Sequence[str]) -> list[str]:
    """The names among ``handlers`` no module here registers and the queue's allowed handlers
    do not name either (a name listed there may run only on workers elsewhere)."""
    if _registered is None:
        return []
    known = _registered()
    named = set(queue.allowed_handlers or [])
    return sorted({h for h in handlers if h not in known and h not in named})


def check_handlers(queue: Queue, handlers: Sequence[str], *, published: bool = False) -> None:
    """Refuse (``HandlerNotAllowed``, 403) handlers outside the queue's allow-list, and, for a
    ``published`` message (from the publish API), reserved handlers the list does not name and
    (``UnknownHandler``, 400) handlers registered nowhere here."""
    named = set(queue.allowed_handlers or [])
    for name in sorted(set(handlers)):
        if published and name in RESERVED_HANDLERS and name not in named:
            raise HandlerNotAllowed(
                f"Handler {name!r} {RESERVED_HANDLERS[name]}: a published message may name it "
                f"only on a queue whose allowed handlers list it, and {queue.name!r} does not."
            )
    unknown = unknown_handlers(queue, handlers) if published else []
    if unknown:
        raise UnknownHandler(
            f"No handler named {unknown[0][:200]!r} is registered here, so no worker would run "
            "it. Check the name (the Handlers page lists them); a handler that runs only on "
            f"workers elsewhere must be named in {queue.name!r}'s allowed handlers."
        )
    refused = sorted({h for h in handlers if not queue.allows_handler(h)})
    if refused:
        raise HandlerNotAllowed(
            f"Queue {queue.name!r} does not take messages for handler "
            f"{', '.join(map(repr, refused))}; it allows: {', '.join(sorted(named))}."
        )


#: What a form says of a handler registered nowhere here.
UNKNOWN_HANDLER = (
    "No handler of that name is registered here: check the name (the Handlers page lists "
    "them), or name it in the queue's allowed handlers if it runs on workers elsewhere."
)


def save_link(link: QueueLink) -> QueueLink:
    """Validate a table link (its filter against the table's fields: ``ValidationError`` keyed
    ``filter``; a handler outside the queue's allow-list or registered nowhere here: keyed
    ``handler``) and save it."""
    link.full_clean()
    try:
        check_handlers(link.queue, [link.handler])
    except HandlerNotAllowed as exc:
        raise ValidationError({"handler": [str(exc)]}) from exc
    if unknown_handlers(link.queue, [link.handler]):
        raise ValidationError({"handler": [UNKNOWN_HANDLER]})
    if link.filter:
        try:
            compile_query(link.filter, list(link.table.fields.all()))
        except QueryError as exc:
            raise ValidationError({"filter": [exc.message]}) from exc
    stored = QueueLink.objects.filter(pk=link.pk).first() if link.pk is not None else None
    before = trail.snapshot(stored, LINK_FIELDS) if stored is not None else None
    with transaction.atomic():
        link.save()
        action = "queue_link.create" if before is None else "queue_link.change"
        trail.record(action, link, before=before, after=trail.snapshot(link, LINK_FIELDS))
    return link


#: What the audit trail keeps of a table link.
LINK_FIELDS = (
    "table", "queue", "handler", "on_create", "on_update", "on_delete", "filter", "enabled",
)  # fmt: skip


def delete_link(link: QueueLink) -> None:
    """Delete a table link: that table's events no longer reach the queue."""
    with transaction.atomic():
        trail.record("queue_link.delete", link, before=trail.snapshot(link, LINK_FIELDS))
        link.delete()
