"""One queue's AMQP connection through kombu over py-amqp: connecting, short-lived channels,
publishing with confirms (a batch at a time, ``confirms.py``), and how AMQP's errors become
ours.

A channel error (404 on a passive declare, 406 on a mismatched one) closes only its channel;
a connection error closes the connection, and every part that kept state on it (the consumer's
buffer and unsettled tags) is told through ``on_reset``. Each new connection has a new
``generation``: a delivery from an older one can no longer be settled.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlunsplit

import amqp.exceptions
import kombu
from kombu.exceptions import OperationalError

from queues.backends.base import QueueConfig, split_url
from queues.backends.rabbitmq.confirms import CONNECTION_FAILED, ConfirmChannel, Outgoing
from queues.errors import BadConfiguration, BrokerUnavailable, QueueError, QueueMissing
from queues.messages import HEADER_MESSAGE_ID

JSON = "application/json"
BINARY = "application/octet-stream"
HEADER_ORDERING_KEY = "quaymaster-ordering-key"
#: What a failed socket operation raises.
SOCKET_ERRORS = (OSError, amqp.exceptions.AMQPError, OperationalError)


@dataclass(frozen=True)
class Names:
    """Queue ``<name>`` dead-letters to ``<name>.dlq``; delayed retries wait in
    ``<name>.retry``, all on the default exchange."""

    name: str

    @property
    def dlq(self) -> str:
        return f"{self.name}.dlq"

    @property
    def retry(self) -> str:
        return f"{self.name}.retry"


class RabbitClient:
    def __init__(self, queue: QueueConfig, connect_timeout: float, confirm_timeout: float) -> None:
        self.queue = queue
        self.connect_timeout = connect_timeout
        #: Waiting for a publisher confirm (and any other socket operation).
        self.confirm_timeout = confirm_timeout
        self.generation = 0
        #: The main queue was seen to exist (cleared when a message comes back unroutable).
        self.queue_known = False
        self._connection: kombu.Connection | None = None
        self._confirming: ConfirmChannel | None = None
        self._on_reset: list[Callable[[], None]] = []

    @property
    def connected(self) -> bool:
        return self._connection is not None

    def on_reset(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever the connection is dropped."""
        self._on_reset.append(callback)

    def connect(self) -> kombu.Connection:
        if self._connection is None:
            parts = split_url(self.queue.connection_url)
            if parts is None:
                raise BadConfiguration("The queue's AMQP URL is not valid; correct it.")
            netloc = parts.hostname or ""
            if ":" in netloc:
                netloc = f"[{netloc}]"
            if parts.port:
                netloc += f":{parts.port}"
            bare = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
            connection = kombu.Connection(
                bare,
                userid=self.queue.username or unquote(parts.username or "") or None,
                password=self.queue.get_secret() or unquote(parts.password or "") or None,
                ssl=parts.scheme == "amqps",
                connect_timeout=self.connect_timeout,
                heartbeat=0,
                transport_options={
                    # No "confirm_publish": it waits for each message's confirm in turn; the
                    # publish channel confirms whole batches (confirms.py).
                    # Bounds every blocking socket operation (declares, confirms, acks).
                    "read_timeout": self.confirm_timeout,
                    "write_timeout": self.confirm_timeout,
                },
            )
            connection.ensure_connection(
                max_retries=1, interval_start=0, interval_step=0.5, interval_max=0.5
            )
            self._connection = connection
            self.generation += 1
        return self._connection

    @contextlib.contextmanager
    def channel(self) -> Iterator[Any]:
        """A short-lived channel: a channel error closes only it."""
        channel = self.connect().channel()
        try:
            yield channel
        finally:
            with contextlib.suppress(Exception):
                if channel.is_open:
                    channel.close()

    def declare_passive(self, name: str) -> Any:
        with self.errors(), self.channel() as channel:
            return channel.queue_declare(queue=name, passive=True)

    def publish(
        self,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        headers: dict[str, str],
        content_type: str,
        ordering_key: str | None,
        expiration: float | None = None,
        priority: int | None = None,
    ) -> None:
        """One message, confirmed (a batch of one): a nack raises ``BrokerUnavailable``,
        an unroutable message ``QueueMissing``."""
        message = self.outgoing(
            body,
            message_id=message_id,
            headers=headers,
            content_type=content_type,
            ordering_key=ordering_key,
            expiration=expiration,
            priority=priority,
        )
        (reason,) = self.publish_batch(routing_key, [message])
        if reason:
            raise self.refusal(routing_key, [reason])

    @staticmethod
    def outgoing(
        body: bytes,
        *,
        message_id: str,
        headers: dict[str, str],
        content_type: str,
        ordering_key: str | None,
        expiration: float | None = None,
        priority: int | None = None,
    ) -> Outgoing:
        """Persistent, our id as the ``message-id`` property and header; ``priority`` is the
        AMQP property (a queue without ``x-max-priority`` ignores it)."""
        own = {HEADER_MESSAGE_ID: message_id, **headers}
        if ordering_key:
            own[HEADER_ORDERING_KEY] = ordering_key
        return Outgoing(
            body,
            message_id,
            own,
            content_type,
            "utf-8" if content_type == JSON else "binary",
            expiration,
            priority,
        )

    def publish_batch(self, routing_key: str, messages: Sequence[Outgoing]) -> list[str]:
        """Publish every message (``mandatory``: an unroutable message is an error, not a
        silent drop), then wait for all the confirms; per message "" (confirmed) or why not.
        Raises only when nothing of the batch was confirmed for a reason that is not the
        message's own (the connection failed, a channel error)."""
        with self.errors():
            channel = self._confirm_channel()
            outcomes = channel.publish(routing_key, messages, self.confirm_timeout)
        if any(reason.startswith(CONNECTION_FAILED) for reason in outcomes):
            self.reset()
        elif any(outcomes):
            # A late confirm must not land on a later batch, nor a nack's cause linger.
            self._drop_channels()
            if any("returned" in reason for reason in outcomes):
                self.queue_known = False
        return outcomes

    @staticmethod
    def refusal(routing_key: str, reasons: Sequence[str]) -> QueueError:
        """The error for a batch of which nothing was confirmed: ``QueueMissing`` when
        RabbitMQ returned every message (no such queue), else ``BrokerUnavailable``."""
        failed = [reason for reason in reasons if reason]
        if failed and all("returned" in reason for reason in failed):
            return QueueMissing(f"{failed[0]}.")
        return BrokerUnavailable(f"{failed[0]} ({len(failed)} of {len(reasons)} message(s)).")

    def reset(self) -> None:
        """Drop the connection (unacknowledged deliveries go back to their queue)."""
        connection, self._connection = self._connection, None
        self._confirming = None
        for callback in self._on_reset:
            callback()
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        try:
            yield
        except QueueError:
            raise
        except amqp.exceptions.NotFound as exc:
            self._drop_channels()
            raise QueueMissing(f"RabbitMQ: {exc.reply_text or exc} (provision the queue).") from exc
        except amqp.exceptions.PreconditionFailed as exc:
            self._drop_channels()
            raise BadConfiguration(
                f"RabbitMQ refused the queue's arguments: {exc.reply_text or exc}."
            ) from exc
        except amqp.exceptions.AccessRefused as exc:
            self.reset()
            raise BadConfiguration(f"RabbitMQ refused access: {exc.reply_text or exc}.") from exc
        except OperationalError as exc:
            self.reset()
            cause = exc.__cause__
            if isinstance(cause, amqp.exceptions.AccessRefused) or "ACCESS_REFUSED" in str(exc):
                raise BadConfiguration(f"RabbitMQ refused the credentials: {exc}") from exc
            raise BrokerUnavailable(f"RabbitMQ at {self._where()} is unreachable: {exc}") from exc
        except (TimeoutError, OSError, amqp.exceptions.AMQPError) as exc:
            self.reset()
            raise BrokerUnavailable(f"RabbitMQ at {self._where()} failed: {exc!r}") from exc

    def _confirm_channel(self) -> ConfirmChannel:
        if self._confirming is None:
            connection = self.connect()
            raw = connection.connection  # py-amqp's, whose frames the waits read

            def drain(seconds: float) -> None:
                raw.drain_events(timeout=seconds)

            self._confirming = ConfirmChannel(connection.channel(), drain)
        return self._confirming

    def _drop_channels(self) -> None:
        """After a channel error (or a batch not wholly confirmed) the publish channel may be
        closed or hold a stale confirm; open a new one next time."""
        confirming, self._confirming = self._confirming, None
        if confirming is not None:
            with contextlib.suppress(Exception):
                confirming.channel.close()

    def _where(self) -> str:
        return self.queue.url or "AMQP_URL"
