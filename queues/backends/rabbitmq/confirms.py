"""Publishing a batch on a channel in confirm mode: every message is sent, then the confirms
of the whole batch are awaited together.

Waiting for each message's confirm before sending the next (what kombu's ``confirm_publish``
does) costs one round trip per message; RabbitMQ confirms many messages with one
``basic.ack`` (``multiple``) when they are sent together, so a batch of 500 waits for about
one round trip. The guarantee is the same: a message counts as published only once the broker
confirmed it.

Per message, the outcome is None (confirmed) or the reason it is not: ``basic.nack``, returned
as unroutable (``mandatory``; RabbitMQ sends ``basic.return`` before that message's ack), or
no confirm before the deadline (or before the connection failed). Delivery tags count the
channel's publishes from 1 after ``confirm.select``; a channel whose wait was cut short is
dropped by the caller, so a late confirm never lands on a later batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import amqp

#: Why a message was returned: it names the routing key, as the single publish did.
RETURNED = "RabbitMQ returned the message: no queue {routing_key!r} ({reason})"
NACKED = "RabbitMQ refused (nacked) the message"
CONNECTION_FAILED = "the connection failed before RabbitMQ confirmed it"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message as AMQP carries it."""

    body: bytes
    message_id: str
    headers: dict[str, str]
    content_type: str
    content_encoding: str
    expiration: float | None = None
    priority: int | None = None


class Batch:
    """The outcomes of one batch, indexed by position; tags ``first`` … ``first + n - 1``."""

    def __init__(self, first: int, size: int) -> None:
        self.first = first
        #: None while waiting; "" once confirmed; else the reason it is not.
        self.outcomes: list[str | None] = [None] * size
        self.waiting = size
        self._low = 0  # every position below is settled (for ``multiple`` confirms)

    def settle(self, tag: int, multiple: bool, reason: str) -> None:
        """Settle position ``tag`` (and every one before it with ``multiple``)."""
        index = tag - self.first
        if index >= len(self.outcomes) or (index < 0 and not multiple):
            return  # not this batch's (the caller drops a channel it stopped waiting on)
        for i in range(self._low, index + 1) if multiple else (index,):
            if self.outcomes[i] is None:
                self.outcomes[i] = reason
                self.waiting -= 1
        while self._low < len(self.outcomes) and self.outcomes[self._low] is not None:
            self._low += 1

    def fail_waiting(self, reason: str) -> None:
        for i, outcome in enumerate(self.outcomes):
            if outcome is None:
                self.outcomes[i] = reason
        self.waiting = 0

    @property
    def confirmed(self) -> int:
        return sum(1 for outcome in self.outcomes if outcome == "")


class ConfirmChannel:
    """A publish channel in confirm mode (``channel``: a py-amqp channel, opened by the
    caller, who closes it); ``drain(timeout)`` reads the connection's next frames."""

    def __init__(self, channel: Any, drain: Callable[[float], None]) -> None:
        self.channel = channel
        self.drain = drain
        self.sent = 0  # the last delivery tag used
        self.batch: Batch | None = None
        self.returned: dict[str, str] = {}
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)
        channel.events["basic_return"].add(self._on_return)
        channel.confirm_select()

    def publish(self, routing_key: str, messages: Sequence[Outgoing], timeout: float) -> list[str]:
        """Send every message, then wait up to ``timeout`` for all their confirms; per
        message "" (confirmed) or why not. A socket error while sending propagates when
        nothing of the batch was confirmed; otherwise it fails only the unconfirmed ones."""
        batch = Batch(self.sent + 1, len(messages))
        self.batch = batch
        self.returned.clear()
        try:
            for message in messages:
                self.channel.basic_publish(
                    amqp.Message(
                        message.body,
                        delivery_mode=2,
                        content_type=message.content_type,
                        content_encoding=message.content_encoding,
                        application_headers=message.headers,
                        message_id=message.message_id,
                        priority=message.priority,
                        expiration=(
                            None
                            if message.expiration is None
                            else str(int(message.expiration * 1000))
                        ),
                    ),
                    exchange="",
                    routing_key=routing_key,
                    mandatory=True,
                )
                self.sent += 1
            self._wait(batch, timeout)
        except (OSError, amqp.exceptions.AMQPError) as exc:
            if isinstance(exc, TimeoutError):
                batch.fail_waiting(f"RabbitMQ did not confirm it within {timeout:g}s")
            elif batch.confirmed == 0:
                raise
            else:
                batch.fail_waiting(f"{CONNECTION_FAILED}: {exc!r}")
        finally:
            self.batch = None
        outcomes = [outcome or "" for outcome in batch.outcomes]
        for i, message in enumerate(messages):
            reason = self.returned.get(message.message_id)
            if reason is not None and outcomes[i] == "":
                outcomes[i] = RETURNED.format(routing_key=routing_key, reason=reason)
        return outcomes

    def _wait(self, batch: Batch, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while batch.waiting:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            self.drain(remaining)

    def _on_ack(self, tag: int, multiple: bool) -> None:
        if self.batch is not None:
            self.batch.settle(tag, multiple, "")

    def _on_nack(self, tag: int, multiple: bool) -> None:
        if self.batch is not None:
            self.batch.settle(tag, multiple, NACKED)

    def _on_return(self, exc: Any, exchange: str, routing_key: str, message: Any) -> None:
        message_id = message.properties.get("message_id")
        if message_id is not None:
            self.returned[str(message_id)] = str(getattr(exc, "reply_text", "") or exc)
