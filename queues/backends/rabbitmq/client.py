"""One queue's AMQP connection through kombu over py-amqp: connecting, short-lived channels,
publishing with confirms, and how AMQP's errors become ours.

A channel error (404 on a passive declare, 406 on a mismatched one) closes only its channel;
a connection error closes the connection, and every part that kept state on it (the consumer's
buffer and unsettled tags) is told through ``on_reset``. Each new connection has a new
``generation``: a delivery from an older one can no longer be settled.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlunsplit

import amqp.exceptions
import kombu
from kombu.exceptions import OperationalError

from queues.backends.base import QueueConfig, split_url
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
        self._publish_channel: Any = None
        self._producer: kombu.Producer | None = None
        self._returned: list[str] = []
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
                    "confirm_publish": True,
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
        """Persistent, ``mandatory`` (an unroutable message is an error, not a silent drop),
        confirmed by the broker (a nack raises); ``priority`` is the AMQP property (a queue
        without ``x-max-priority`` ignores it)."""
        if ordering_key:
            headers = {**headers, HEADER_ORDERING_KEY: ordering_key}
        with self.errors():
            producer = self._get_producer()
            self._returned.clear()
            producer.publish(
                body,
                routing_key=routing_key,
                exchange="",
                delivery_mode=2,
                mandatory=True,
                content_type=content_type,
                content_encoding="utf-8" if content_type == JSON else "binary",
                headers={HEADER_MESSAGE_ID: message_id, **headers},
                message_id=message_id,
                expiration=expiration,
                priority=priority,
                retry=False,
                declare=[],
                timeout=self.confirm_timeout,
                confirm_timeout=self.confirm_timeout,
            )
            if self._returned:
                self.queue_known = False
                raise QueueMissing(
                    f"RabbitMQ returned the message: no queue {routing_key!r} "
                    f"({self._returned[0]})."
                )

    def reset(self) -> None:
        """Drop the connection (unacknowledged deliveries go back to their queue)."""
        connection, self._connection = self._connection, None
        self._producer = None
        self._publish_channel = None
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
        except amqp.exceptions.MessageNacked as exc:
            self._drop_channels()
            raise BrokerUnavailable("RabbitMQ refused (nacked) a message.") from exc
        except OperationalError as exc:
            self.reset()
            cause = exc.__cause__
            if isinstance(cause, amqp.exceptions.AccessRefused) or "ACCESS_REFUSED" in str(exc):
                raise BadConfiguration(f"RabbitMQ refused the credentials: {exc}") from exc
            raise BrokerUnavailable(f"RabbitMQ at {self._where()} is unreachable: {exc}") from exc
        except (TimeoutError, OSError, amqp.exceptions.AMQPError) as exc:
            self.reset()
            raise BrokerUnavailable(f"RabbitMQ at {self._where()} failed: {exc!r}") from exc

    def _get_producer(self) -> kombu.Producer:
        if self._producer is None:
            self._publish_channel = self.connect().channel()
            self._producer = kombu.Producer(
                self._publish_channel, on_return=self._on_return, auto_declare=False
            )
        return self._producer

    def _on_return(self, exception: Any, exchange: str, routing_key: str, message: Any) -> None:
        self._returned.append(str(exception))

    def _drop_channels(self) -> None:
        """After a channel error the publish channel may be closed; open a new one next time."""
        self._producer = None
        if self._publish_channel is not None:
            with contextlib.suppress(Exception):
                self._publish_channel.close()
        self._publish_channel = None

    def _where(self) -> str:
        return self.queue.url or "AMQP_URL"
