"""RabbitMQ dead letters: read, send back and delete the messages of ``<name>.dlq`` with AMQP.

A scan takes messages with ``basic.get`` (no auto-ack) on a channel of its own and holds them
unacknowledged, so it never meets one twice; at the end every message it kept is rejected with
``requeue`` (classic queues put it back in its place), and closing the channel requeues
whatever a failure left unacknowledged. Reading dead letters therefore never loses one; the
messages come back flagged ``redelivered``, which nothing reads on the DLQ.

* Send back: publish to ``<name>`` with publisher confirms (same body, message id, content type
  and ordering key; the reason, the attempt header and RabbitMQ's ``x-death`` dropped, so the
  attempt count starts again at 1), then ``basic.ack`` on the DLQ (at least once).
* A message RabbitMQ dead-lettered by itself (rejected without requeue, or its TTL expired on
  the main queue) has no reason header: its ``x-death`` entry says why.
* Purge is ``queue.purge`` of ``<name>`` and ``<name>.retry`` (delayed retries): ready messages
  only; RabbitMQ leaves the unacknowledged ones with their consumers, and the DLQ alone.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from queues.backends.rabbitmq.client import BINARY, HEADER_ORDERING_KEY, Names, RabbitClient
from queues.backends.scan import SCAN_LIMIT, Deadline, all_found, as_text, attempts_from, wanted_set
from queues.messages import HEADER_ATTEMPT, HEADER_MESSAGE_ID, HEADER_REASON, DeadLetter


class RabbitDeadLetters:
    """A queue's dead letters, read on its connection; ``user_headers`` turns AMQP headers
    into the message's own."""

    def __init__(
        self,
        client: RabbitClient,
        names: Names,
        user_headers: Callable[[Mapping[str, Any]], dict[str, str]],
    ) -> None:
        self.client = client
        self.name = names.name
        self.dlq_name = names.dlq
        self.retry_name = names.retry
        self.user_headers = user_headers

    # -- the four operations ------------------------------------------------------------------

    def peek(self, limit: int, keys: Iterable[str] | None) -> list[DeadLetter]:
        wanted = wanted_set(keys)
        found: list[DeadLetter] = []

        def visit(channel: Any, message: Any) -> bool:
            letter = self.letter(message)
            if letter.matches(wanted):
                found.append(letter)
            return False

        self._scan(visit, done=lambda: len(found) >= limit or all_found(found, wanted))
        return found[:limit]

    def redrive(self, message_ids: Iterable[str] | None) -> int:
        wanted = wanted_set(message_ids)
        moved = 0

        def visit(channel: Any, message: Any) -> bool:
            nonlocal moved
            letter = self.letter(message)
            if not letter.matches(wanted):
                return False
            self.client.publish(
                self.name,
                message.body if isinstance(message.body, bytes) else str(message.body).encode(),
                message_id=letter.message_id,
                headers=dict(letter.headers),
                content_type=message.properties.get("content_type") or BINARY,
                ordering_key=letter.ordering_key,
                priority=message.properties.get("priority"),
            )
            moved += 1
            return True

        self._scan(visit, done=lambda: wanted is not None and moved >= len(wanted))
        return moved

    def delete(self, message_id: str) -> bool:
        deleted = 0

        def visit(channel: Any, message: Any) -> bool:
            nonlocal deleted
            if self.letter(message).matches({message_id}):
                deleted += 1
                return True
            return False

        self._scan(visit, done=lambda: False)
        return deleted > 0

    def purge(self) -> int:
        with self._channel() as channel:
            return sum(int(channel.queue_purge(name) or 0) for name in (self.name, self.retry_name))

    # -- scanning -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _channel(self) -> Iterator[Any]:
        with self.client.errors(), self.client.channel() as channel:
            yield channel

    def _scan(self, visit: Callable[[Any, Any], bool], done: Callable[[], bool]) -> None:
        """Get every DLQ message once; ``visit`` returns True to have it acknowledged
        (removed). The others are requeued before returning."""
        deadline = Deadline()
        with self._channel() as channel:
            kept: list[int] = []
            try:
                taken = 0
                while not done() and not deadline.passed and taken < SCAN_LIMIT:
                    message = channel.basic_get(self.dlq_name, no_ack=False)
                    if message is None:
                        break
                    taken += 1
                    if visit(channel, message):
                        channel.basic_ack(message.delivery_tag)
                    else:
                        kept.append(message.delivery_tag)
            finally:
                for tag in kept:
                    with contextlib.suppress(Exception):  # closing the channel requeues too
                        channel.basic_reject(tag, requeue=True)

    # -- reading one ----------------------------------------------------------------------------

    def letter(self, message: Any) -> DeadLetter:
        headers = dict(message.headers or {})
        message_id = as_text(message.properties.get("message_id")) or as_text(
            headers.get(HEADER_MESSAGE_ID)
        )
        body = message.body if isinstance(message.body, bytes) else str(message.body).encode()
        reason = as_text(headers.get(HEADER_REASON)) or _x_death_reason(headers)
        return DeadLetter(
            # A message published by someone else may lack an id: its body names it then.
            key=message_id or "sha-" + hashlib.sha256(body).hexdigest()[:16],
            message_id=message_id,
            body=body,
            reason=reason,
            attempts=attempts_from(headers.get(HEADER_ATTEMPT)),
            headers=self.user_headers(headers),
            ordering_key=as_text(headers.get(HEADER_ORDERING_KEY)) or None,
            origin=f"RabbitMQ queue {self.dlq_name}",
        )


def _x_death_reason(headers: dict[str, Any]) -> str:
    deaths = headers.get("x-death") or []
    if deaths and isinstance(deaths[0], dict):
        death = deaths[0]
        return (
            f"RabbitMQ dead-lettered it from {as_text(death.get('queue'))!s}: "
            f"{as_text(death.get('reason'))} ({death.get('count', 1)} time(s))."
        )
    return "(no reason recorded)"
