"""Publishing messages from the API: checks, idempotency, and the call to the backend.

Views stay thin; this is what they call. A message is published synchronously: when the
answer is 201 the broker has it (for the database type: the row is committed).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.authentication import allows_queue
from accounts.models import ApiToken
from accounts.roles import is_admin
from queues.api.errors import (
    IdempotencyInProgress,
    IdempotencyMismatch,
    InvalidBatch,
    MissingHandler,
    NotAnObject,
    QueueDisabled,
    QueueForbidden,
    QueueNotFound,
)
from queues.housekeeping import idempotency_ttl
from queues.messages import OutgoingMessage
from queues.models import IdempotencyKey, Queue
from queues.services import publishers

#: Most messages one batch request may carry.
MAX_BATCH = 100


def find_queue(*, queue_id: int | None = None, name: str | None = None) -> Queue:
    queue = (
        Queue.objects.filter(pk=queue_id).first()
        if queue_id is not None
        else Queue.objects.filter(name=name).first()
    )
    if queue is None:
        what = f"id {queue_id}" if queue_id is not None else f"name {name!r}"
        raise QueueNotFound(f"No queue with {what}.")
    return queue


def check_may_publish(user: Any, token: Any, queue: Queue) -> None:
    """Admins and holders of ``queues.publish_queue`` may publish; a token named queues
    narrows that to those queues."""
    if not (is_admin(user) or user.has_perm("queues.publish_queue")):
        raise QueueForbidden("You may not publish messages.")
    if isinstance(token, ApiToken) and not allows_queue(token, queue.pk):
        raise QueueForbidden(f"This token may not publish to queue {queue.name!r}.")
    if not queue.enabled:
        raise QueueDisabled(f"Queue {queue.name!r} is disabled.")


def message_problems(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return ["The message must be a JSON object."]
    handler = body.get("handler")
    if not isinstance(handler, str) or not handler.strip():
        return ["The message needs a 'handler': the name of the handler to run, as text."]
    return []


def check_message(body: Any) -> None:
    problems = message_problems(body)
    if problems:
        raise (NotAnObject if not isinstance(body, dict) else MissingHandler)(problems[0])


def publish(queue: Queue, bodies: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Publish the bodies as one batch; the API answer for each, in order. The backend is the
    process's own for this queue (``queues.services.publishers``, a ``BackendCache``), not
    one per request."""
    messages = [OutgoingMessage(str(uuid.uuid4()), body) for body in bodies]
    with publishers.lease(queue) as backend:
        results = backend.publish(messages)  # the database backend writes its batch atomically
    return [{**r.as_response(), "queue-id": queue.pk} for r in results]


def publish_batch(queue: Queue, bodies: Any) -> list[dict[str, Any]]:
    if not isinstance(bodies, list) or not bodies:
        raise NotAnObject('Send {"messages": [ {...}, ... ]} with at least one message.')
    if len(bodies) > MAX_BATCH:
        raise NotAnObject(
            f"A batch carries at most {MAX_BATCH} messages; this one has {len(bodies)}."
        )
    errors = {i: problems for i, body in enumerate(bodies) if (problems := message_problems(body))}
    if errors:
        raise InvalidBatch(errors)
    return publish(queue, bodies)


def remembered(user: Any, key: str, queue: Queue) -> IdempotencyKey | None:
    """Claim ``key`` for this request, or return the earlier request's record.

    The claim commits at once, so a concurrent repeat sees it and is told to wait (409). A
    key older than ``QUAYMASTER_IDEMPOTENCY_KEY_HOURS`` is forgotten: the request publishes."""
    expired = timezone.now() - idempotency_ttl()
    IdempotencyKey.objects.filter(user=user, key=key, created_at__lt=expired).delete()
    try:
        with transaction.atomic():
            IdempotencyKey.objects.create(user=user, key=key, queue=queue)
    except IntegrityError:
        earlier = IdempotencyKey.objects.get(user=user, key=key)
        if earlier.queue_id != queue.pk:
            raise IdempotencyMismatch(
                "This Idempotency-Key was used for another queue; use a new key."
            ) from None
        if earlier.response is None:
            raise IdempotencyInProgress(
                "A request with this Idempotency-Key is still running; retry shortly."
            ) from None
        return earlier
    return None


def remember(user: Any, key: str, status: int, response: Any) -> None:
    IdempotencyKey.objects.filter(user=user, key=key).update(status=status, response=response)


def forget(user: Any, key: str) -> None:
    """The request failed: a retry with the same key must publish."""
    IdempotencyKey.objects.filter(user=user, key=key, response__isnull=True).delete()
