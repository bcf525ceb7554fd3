"""The peers: each engine's own Python client, used directly — no Django, no backend class.

Each publisher gives the same delivery guarantee our backend gives, so the ratio measures our
overhead, not a weaker promise:

* Kafka — confluent-kafka, idempotent producer, ``acks=all``, ``linger.ms=2``, our message-id
  header, one ``flush()`` per batch (the broker acknowledged every message);
* RabbitMQ — py-amqp, persistent messages, ``mandatory``, publisher confirms: the batch is
  sent whole on a channel in confirm mode, then every confirm is awaited (the engine's
  practice; one confirm at a time, kombu's ``confirm_publish``, is ten times slower);
* SQS — boto3 ``SendMessageBatch`` of 10 with our message-id attribute;
* database — psycopg, one multi-row ``INSERT`` into the database queue's table per batch, one
  transaction per batch.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from bench.queues import chunks, sqs_client

HEADER_MESSAGE_ID = "quaymaster-message-id"


def encode(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


class Publisher:
    def publish(self, bodies: Sequence[bytes]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class KafkaPublisher(Publisher):
    def __init__(self, topic: str) -> None:
        from confluent_kafka import Producer

        self.topic = topic
        self.producer = Producer(
            {
                "bootstrap.servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"],
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 2,
                "partitioner": "murmur2_random",
            }
        )
        self.failed: list[str] = []

    def _report(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.failed.append(str(err))

    def publish(self, bodies: Sequence[bytes]) -> None:
        for body in bodies:
            self.producer.produce(
                self.topic,
                body,
                headers=[(HEADER_MESSAGE_ID, str(uuid.uuid4()))],
                on_delivery=self._report,
            )
        if self.producer.flush(15) or self.failed:
            raise RuntimeError(f"Kafka peer: {self.failed[:3]}")

    def close(self) -> None:
        self.producer.flush(5)


class RabbitPublisher(Publisher):
    """py-amqp on a channel in confirm mode: the whole batch is sent, then its confirms are
    awaited together (RabbitMQ acks many with ``multiple``); the batch is done only when every
    message is confirmed, and a nack or a missing confirm fails it."""

    def __init__(self, queue: str) -> None:
        import amqp

        self.queue = queue
        parts = urlsplit(os.environ["AMQP_URL"])
        self.connection = amqp.Connection(
            host=f"{parts.hostname}:{parts.port or 5672}",
            userid=parts.username or "guest",
            password=parts.password or "guest",
            virtual_host=parts.path[1:] or "/",
            connect_timeout=5,
        )
        self.connection.connect()
        self.channel = self.connection.channel()
        self.channel.confirm_select()
        self.channel.events["basic_ack"].add(self._on_confirm)
        self.channel.events["basic_nack"].add(self._on_nack)
        self.channel.events["basic_return"].add(self._on_return)
        self.sent = 0  # the last delivery tag
        self.unconfirmed: set[int] = set()
        self.low = 1  # every tag below is confirmed
        self.refused: list[str] = []
        self._message = amqp.Message

    def _on_confirm(self, tag: int, multiple: bool) -> None:
        if multiple:
            for earlier in range(self.low, tag + 1):
                self.unconfirmed.discard(earlier)
            self.low = max(self.low, tag + 1)
        else:
            self.unconfirmed.discard(tag)

    def _on_nack(self, tag: int, multiple: bool) -> None:
        self.refused.append(f"nack {tag}")
        self._on_confirm(tag, multiple)

    def _on_return(self, exc: Any, exchange: str, routing_key: str, message: Any) -> None:
        self.refused.append(f"returned: {exc}")

    def publish(self, bodies: Sequence[bytes]) -> None:
        for body in bodies:
            message_id = str(uuid.uuid4())
            self.channel.basic_publish(
                self._message(
                    body,
                    delivery_mode=2,
                    content_type="application/json",
                    content_encoding="utf-8",
                    message_id=message_id,
                    application_headers={HEADER_MESSAGE_ID: message_id},
                ),
                exchange="",
                routing_key=self.queue,
                mandatory=True,
            )
            self.sent += 1
            self.unconfirmed.add(self.sent)
        deadline = time.monotonic() + 10
        while self.unconfirmed:
            self.connection.drain_events(timeout=max(deadline - time.monotonic(), 0.001))
        if self.refused:
            raise RuntimeError(f"RabbitMQ peer: {self.refused[:3]}")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.connection.close()


class SqsPublisher(Publisher):
    def __init__(self, queue: str) -> None:
        self.client = sqs_client()
        self.url = self.client.get_queue_url(QueueName=queue)["QueueUrl"]

    def publish(self, bodies: Sequence[bytes]) -> None:
        for chunk in chunks(bodies, 10):
            entries = []
            for index, body in enumerate(chunk):
                attributes = {
                    HEADER_MESSAGE_ID: {"DataType": "String", "StringValue": str(uuid.uuid4())}
                }
                entries.append(
                    {
                        "Id": str(index),
                        "MessageBody": body.decode(),
                        "MessageAttributes": attributes,
                    }
                )
            answer = self.client.send_message_batch(QueueUrl=self.url, Entries=entries)
            if answer.get("Failed"):
                raise RuntimeError(f"SQS peer: {answer['Failed'][:3]}")

    def close(self) -> None:
        self.client.close()


class DatabasePublisher(Publisher):
    """Rows of the database queue, written with psycopg on its own connection."""

    def __init__(self, queue_id: int) -> None:
        import psycopg

        self.queue_id = queue_id
        self.connection = psycopg.connect(os.environ["DATABASE_URL"])

    def publish(self, bodies: Sequence[bytes]) -> None:
        rows = [(self.queue_id, uuid.uuid4(), body.decode()) for body in bodies]
        values = ", ".join(
            ["(%s, %s, %s::jsonb, '{}'::jsonb, '', 'ready', 0, now(), '', '', now())"] * len(rows)
        )
        params = [value for row in rows for value in row]
        with self.connection.transaction():
            self.connection.execute(
                "INSERT INTO queues_databasemessage (queue_id, message_id, body, headers, "
                "ordering_key, state, attempts, available_at, lease_owner, last_error, "
                f"created_at) VALUES {values}",
                params,
            )

    def close(self) -> None:
        self.connection.close()


def publisher_for(engine: str, name: str, queue_id: int) -> Publisher:
    if engine == "kafka":
        return KafkaPublisher(name)
    if engine == "rabbitmq":
        return RabbitPublisher(name)
    if engine == "sqs":
        return SqsPublisher(name)
    return DatabasePublisher(queue_id)


def publisher(queue: Any) -> Publisher:
    """The peer publisher for a ``queues.models.Queue``."""
    return publisher_for(queue.type, queue.name, queue.pk)


# -- consuming, for commit-to-broker latency ----------------------------------------------------


class KafkaTail:
    """Reads a topic from its current end in a thread, calling ``on_message(value, received)``
    with the wall-clock time each message arrived."""

    def __init__(self, topic: str, on_message: Callable[[bytes, float], None]) -> None:
        from confluent_kafka import Consumer, TopicPartition

        self.consumer = Consumer(
            {
                "bootstrap.servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"],
                "group.id": f"bench-tail-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 5,
                "fetch.min.bytes": 1,
            }
        )
        partitions = self.consumer.list_topics(topic, timeout=10).topics[topic].partitions
        assigned = []
        for p in partitions:
            _, high = self.consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            assigned.append(TopicPartition(topic, p, high))
        self.consumer.assign(assigned)
        self.on_message = on_message
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            # poll(), not consume(n): consume waits out its timeout unless n messages came.
            message = self.consumer.poll(0.05)
            if message is None or message.error() is not None:
                continue
            value = message.value()
            if value is not None:
                self.on_message(value, time.time())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.consumer.close()
