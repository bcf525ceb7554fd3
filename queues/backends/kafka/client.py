"""What every Kafka client of one queue shares: the topic and group names, the librdkafka
configuration, whether all brokers are down, and how librdkafka's errors become ours."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from queues.backends.base import QueueConfig
from queues.errors import BadConfiguration, BrokerUnavailable, QueueError, QueueMissing

logger = logging.getLogger("queues.backends.kafka")

AUTH = {
    KafkaError._AUTHENTICATION,
    KafkaError.SASL_AUTHENTICATION_FAILED,
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.GROUP_AUTHORIZATION_FAILED,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED,
}
MISSING = {
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._UNKNOWN_TOPIC,
    KafkaError._UNKNOWN_PARTITION,
}
TRANSIENT = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError._WAIT_COORD,
}
REBALANCED = {
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError._NO_OFFSET,
    KafkaError._STATE,
}


def error_code(exc: KafkaException) -> Any:
    error = exc.args[0] if exc.args else None
    return error.code() if isinstance(error, KafkaError) else None


def retriable(exc: KafkaException, also: set[Any] = TRANSIENT) -> bool:
    """Whether asking again shortly may succeed (leadership moving after a topic creation)."""
    error = exc.args[0] if exc.args else None
    return isinstance(error, KafkaError) and (error.retriable() or error.code() in also)


@dataclass(frozen=True)
class Names:
    """``<name>`` and ``<name>.retry`` are read by the group ``quaymaster.<name>``; dead letters
    go to ``<name>.dlq``."""

    topic: str
    retry_topic: str
    dlq_topic: str
    group_id: str

    @classmethod
    def of(cls, queue_name: str) -> Names:
        return cls(
            queue_name, f"{queue_name}.retry", f"{queue_name}.dlq", f"quaymaster.{queue_name}"
        )


def base_config(queue: QueueConfig, connect_timeout: float) -> dict[str, Any]:
    """Every client's settings: the brokers, our client id, SASL PLAIN over TLS when the queue
    has a user name."""
    config: dict[str, Any] = {
        "bootstrap.servers": queue.connection_url,
        "client.id": f"quaymaster.{queue.name}",
        "socket.connection.setup.timeout.ms": int(connect_timeout * 1000),
    }
    if queue.username:
        config.update(
            {
                "security.protocol": "SASL_SSL",
                "sasl.mechanisms": "PLAIN",
                "sasl.username": queue.username,
                "sasl.password": queue.get_secret(),
            }
        )
    return config


class KafkaClient:
    """One queue's view of the cluster; the producer, consumer, admin and dead-letter parts
    each build their librdkafka clients from it."""

    def __init__(self, queue: QueueConfig, config: dict[str, Any], connect_timeout: float) -> None:
        self.queue = queue
        self.names = Names.of(str(queue.name))
        self.connect_timeout = connect_timeout
        self._config = config
        #: Set by librdkafka's error callback; cleared once a broker answers again.
        self.brokers_down = False

    def config(self, **extra: Any) -> dict[str, Any]:
        """The queue's settings, our error callback and logging, and ``extra``."""
        return {
            **self._config,
            "error_cb": self._on_error,
            # librdkafka's own log lines go through logging, not straight to stderr.
            "logger": logger,
            **extra,
        }

    def consumer(self, group_id: str, **extra: Any) -> Consumer:
        return Consumer(self.config(**{"group.id": group_id, **extra}))

    def admin(self) -> AdminClient:
        return AdminClient(self.config())

    def metadata(self, client: AdminClient | Consumer | Producer, doing: str = "connecting") -> Any:
        try:
            return client.list_topics(timeout=self.connect_timeout)
        except KafkaException as exc:
            raise self.translate(exc, doing) from exc

    def verify_brokers(self, client: Consumer | Producer) -> None:
        """After librdkafka said all brokers are down: raise unless one answers now."""
        self.metadata(client, "reconnecting")
        self.brokers_down = False

    def translate(self, exc: KafkaException, doing: str) -> QueueError:
        error = exc.args[0] if exc.args else None
        code = error_code(exc)
        where = self.queue.url or "KAFKA_BOOTSTRAP_SERVERS"
        if code in AUTH:
            return BadConfiguration(f"Kafka refused the credentials while {doing}: {error}")
        if code in MISSING:
            return QueueMissing(f"Kafka topic {self.names.topic!r} is missing ({doing}): {error}")
        if code == KafkaError._INVALID_ARG:
            return BadConfiguration(f"Kafka refused the configuration while {doing}: {error}")
        return BrokerUnavailable(f"Kafka at {where} failed while {doing}: {error}")

    def _on_error(self, error: KafkaError) -> None:
        # Called from poll()/flush()/consume() on the caller's thread.
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self.brokers_down = True
