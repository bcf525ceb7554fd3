"""Publishing messages from the API: checks, idempotency, and the call to the backend.

Views stay thin; this is what they call. A message is published synchronously: when the
answer is 201 the broker has it (for the database type: the row is committed).
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import epoch
from accounts.authentication import allows_queue
from accounts.models import ApiToken
from accounts.roles import may_publish
from quaymaster import metrics
from queues.api.errors import (
    IdempotencyInProgress,
    IdempotencyMismatch,
    InvalidBatch,
    InvalidIdempotencyKey,
    MissingHandler,
    NotAnObject,
    QueueDisabled,
    QueueForbidden,
    QueueNotFound,
)
from queues.errors import QueueError
from queues.housekeeping import idempotency_ttl
from queues.messages import OutgoingMessage
from queues.models import IdempotencyKey, Queue
from queues.services import check_handlers, publishers
from queues.tracing import record_published

log = logging.getLogger("queues.api")

#: Most messages one batch request may carry.
MAX_BATCH = 100
IN_PROGRESS = "A request with this Idempotency-Key is still running; retry shortly."
#: The longest ``Idempotency-Key`` (the column's length).
MAX_IDEMPOTENCY_KEY = IdempotencyKey._meta.get_field("key").max_length or 255


def find_queue(
    user: Any, token: Any, *, queue_id: int | None = None, name: str | None = None
) -> Queue:
    """The queue a request may publish to, checked in an order that tells the caller nothing
    more than it may know. Admins and holders of ``queues.publish_queue`` may publish (403
    for anyone else, before any lookup: whether the queue exists or not); a token naming
    queues narrows that to those, with the same 403 for a queue outside them and for a queue
    that does not exist. Only who may publish to every queue learns that one is missing (404)."""
    if not epoch.cache.get(("may_publish", user.pk), lambda: may_publish(user)):
        raise QueueForbidden("You may not publish messages.")
    # Kept per process under the cache epoch (a queue change renews it).
    if queue_id is not None:
        queue = epoch.cache.get(("queue", queue_id), Queue.objects.filter(pk=queue_id).first)
    else:
        queue = epoch.cache.get(("queue-name", name), Queue.objects.filter(name=name).first)
    # No queue has id 0: a missing queue is allowed only by a token without a limit.
    if isinstance(token, ApiToken) and not allows_queue(token, queue.pk if queue else 0):
        raise QueueForbidden("This token may not publish to this queue.")
    if queue is None:
        what = f"id {queue_id}" if queue_id is not None else f"name {name!r}"
        raise QueueNotFound(f"No queue with {what}.")
    return copy.copy(queue)  # the request's own: what it does to it never reaches the kept one


def check_enabled(queue: Queue) -> None:
    """A disabled queue refuses publishes (409), once the caller may know it exists."""
    if not queue.enabled:
        raise QueueDisabled(f"Queue {queue.name!r} is disabled.")


def message_problems(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return ["The message must be a JSON object."]
    handler = body.get("handler")
    if not isinstance(handler, str) or not handler.strip():
        return ["The message needs a 'handler': the name of the handler to run, as text."]
    return []


def _spot(body: Any) -> str:
    """Where a message's problem is: the message itself, or its handler."""
    return "handler" if isinstance(body, dict) else "$"


def _at(error: QueueError, path: str) -> QueueError:
    """``error`` naming the spot of the body it is about (the API's answer carries it as
    ``path``, as the query language's errors do)."""
    error.path = path  # type: ignore[attr-defined]
    return error


def check_message(body: Any) -> None:
    problems = message_problems(body)
    if problems:
        error = (NotAnObject if not isinstance(body, dict) else MissingHandler)(problems[0])
        raise _at(error, _spot(body))


def publish(
    queue: Queue, bodies: Sequence[dict[str, Any]], *, batch: bool = False
) -> list[dict[str, Any]]:
    """Publish the bodies as one batch; the API answer for each, in order. The backend is the
    process's own for this queue (``queues.services.publishers``, a ``BackendCache``), not
    one per request. A handler outside the queue's allow-list or reserved (403), or registered
    nowhere here (400), refuses the whole batch, naming the first one's spot."""
    checked: set[str] = set()
    for index, body in enumerate(bodies):
        if body["handler"] in checked:
            continue  # a batch usually names one handler: each name is checked once
        try:
            check_handlers(queue, [body["handler"]], published=True)
        except QueueError as error:
            raise _at(error, f"messages[{index}].handler" if batch else "handler") from None
        checked.add(body["handler"])
    messages = [OutgoingMessage(str(uuid.uuid4()), body) for body in bodies]
    labels = (queue.name, queue.type)
    started = time.perf_counter()
    try:
        with publishers.lease(queue) as backend:
            results = backend.publish(messages)  # the database backend writes its batch atomically
    except QueueError as error:
        metrics.API_PUBLISH_ERRORS.labels(*labels, error.code).inc()
        raise
    finally:
        metrics.API_PUBLISH_SECONDS.labels(*labels).observe(time.perf_counter() - started)
    metrics.API_PUBLISHED.labels(*labels).inc(len(results))
    record_published(queue, results)
    # One line per accepted publish: with the request's and token's ids (quaymaster.logs), the
    # message ids the relay and the workers log too.
    ids = [r.message_id for r in results]
    log.info(
        "api: published %d message(s) to %s",
        len(ids),
        queue.name,
        extra={"queue": queue.name, "message_ids": ids},
    )
    return [{**r.as_response(), "queue-id": queue.pk} for r in results]


def publish_batch(queue: Queue, bodies: Any) -> list[dict[str, Any]]:
    if not isinstance(bodies, list) or not bodies:
        error = NotAnObject('Send {"messages": [ {...}, ... ]} with at least one message.')
        raise _at(error, "messages")
    if len(bodies) > MAX_BATCH:
        error = NotAnObject(
            f"A batch carries at most {MAX_BATCH} messages; this one has {len(bodies)}."
        )
        raise _at(error, "messages")
    errors = {i: problems for i, body in enumerate(bodies) if (problems := message_problems(body))}
    if errors:
        first = min(errors)
        spot = _spot(bodies[first])
        path = f"messages[{first}]" if spot == "$" else f"messages[{first}].{spot}"
        raise _at(InvalidBatch(errors), path)
    return publish(queue, bodies, batch=True)


def claim_timeout() -> dt.timedelta:
    """How long a claimed key without an answer stays claimed: after that its request is
    taken for dead (killed mid-publish) and the next request with the key publishes."""
    return dt.timedelta(
        seconds=float(getattr(settings, "QUAYMASTER_IDEMPOTENCY_CLAIM_SECONDS", 60))
    )


def check_idempotency_key(key: str) -> None:
    if len(key) > MAX_IDEMPOTENCY_KEY:
        raise InvalidIdempotencyKey(
            f"An Idempotency-Key has at most {MAX_IDEMPOTENCY_KEY} characters; "
            f"this one has {len(key)}."
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise InvalidIdempotencyKey("An Idempotency-Key may not contain control characters.")


def remembered(user: Any, key: str, queue: Queue) -> IdempotencyKey | None:
    """Claim ``key`` for this request, or return the earlier request's record.

    The claim commits at once, so a concurrent repeat sees it and is told to wait (409). A
    claim still without an answer after ``claim_timeout()`` was left by a request that died
    mid-publish: the next repeat takes it over (one repeat, however many race) and publishes,
    so that message may be on the queue twice (publishing is at least once). A key older
    than ``QUAYMASTER_IDEMPOTENCY_KEY_HOURS`` is forgotten: the request publishes."""
    check_idempotency_key(key)
    now = timezone.now()
    IdempotencyKey.objects.filter(
        user=user, key=key, created_at__lt=now - idempotency_ttl()
    ).delete()
    earlier = None
    for _attempt in range(3):  # the earlier claim may be forgotten between the two steps
        if _claim(user, key, queue):
            return None
        earlier = IdempotencyKey.objects.filter(user=user, key=key).first()
        if earlier is not None:
            break
    if earlier is None:
        raise IdempotencyInProgress(IN_PROGRESS)
    if earlier.queue_id != queue.pk:
        raise IdempotencyMismatch("This Idempotency-Key was used for another queue; use a new key.")
    if earlier.response is not None:
        return earlier
    if earlier.created_at > now - claim_timeout() or not _take_over(earlier, now):
        raise IdempotencyInProgress(IN_PROGRESS)
    return None


def _claim(user: Any, key: str, queue: Queue) -> bool:
    try:
        with transaction.atomic():
            IdempotencyKey.objects.create(user=user, key=key, queue=queue)
    except IntegrityError:
        return False
    return True


def _take_over(claim: IdempotencyKey, now: dt.datetime) -> bool:
    """Make an abandoned claim this request's; False when another request took it first
    (the update only matches the claim as it was read)."""
    return bool(
        IdempotencyKey.objects.filter(
            pk=claim.pk, response__isnull=True, created_at=claim.created_at
        ).update(created_at=now)
    )


def remember(user: Any, key: str, status: int, response: Any) -> None:
    IdempotencyKey.objects.filter(user=user, key=key).update(status=status, response=response)


def forget(user: Any, key: str) -> None:
    """The request failed: a retry with the same key must publish."""
    IdempotencyKey.objects.filter(user=user, key=key, response__isnull=True).delete()
