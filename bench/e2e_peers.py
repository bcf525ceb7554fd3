"""The end-to-end scenario's peers: per engine, its own client producing one message per write
and a bare consumer of the same client, in a thread, taking ``time.time()`` the moment a
message is in its hands (before parsing it). No Django, no outbox, no relay: one hop.

* RabbitMQ — ``bench.clients.RabbitPublisher`` (persistent, mandatory, a publisher confirm per
  message); the consumer is py-amqp ``basic_consume`` with ``basic.qos`` 10 and manual acks,
  looping on ``drain_events``.
* Kafka — ``bench.clients.KafkaPublisher`` (idempotent, ``acks=all``, a flush per message);
  the consumer is ``bench.clients.KafkaTail`` (assigned at the end of each partition, polling).
* SQS — ``bench.clients.SqsPublisher`` (a batch of one); the consumer long-polls
  ``ReceiveMessage`` (``WaitTimeSeconds=1``, as our worker does with its default
  ``--poll-seconds 1``) and deletes what it got.
* database queue on PostgreSQL — psycopg: the producer INSERTs a row of the database queue's
  table and NOTIFYs in the same transaction; the consumer LISTENs and claims ready rows with
  ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING`` (what queue libraries on
  PostgreSQL such as procrastinate do), then deletes them (the ack). That is the best a bare
  client does on PostgreSQL: push on commit, no polling.
* database queue on SQLite (the embedded default) — the standard library's sqlite3 on the same
  file, WAL as the settings open it: INSERT committed; the consumer claims with
  ``UPDATE … RETURNING`` and, finding nothing, looks again after 0.2 s
  (``DatabaseBackend.poll_interval``, the pace our worker looks at the queue). SQLite has no
  notification, so a bare consumer polls too; at our worker's pace the ratio shows what the
  second polled hop (outbox → relay) costs.

A peer's clock starts just before its produce call (the INSERT's transaction on the databases),
so the produce round trip is counted, as the write's own relay publish is counted for ours.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from bench.clients import (
    KafkaPublisher,
    KafkaTail,
    Publisher,
    RabbitPublisher,
    SqsPublisher,
    encode,
)
from bench.queues import sqs_client
from bench.scenarios.relay import event_body

#: ``on_arrival(ident, received)``: the consumer got the message for write ``ident``.
OnArrival = Callable[[int, float], None]

SQLITE_POLL_SECONDS = 0.2


def _ident(value: bytes | str) -> int | None:
    try:
        return int(json.loads(value)["record_id"])
    except (ValueError, KeyError, TypeError):
        return None


class Peer:
    """``send(ident)`` produces one message (an event body with ``record_id = ident``); the
    consumer thread reports each arrival to ``on_arrival``."""

    def __init__(self, on_arrival: OnArrival) -> None:
        self.on_arrival = on_arrival
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._consume, daemon=True)
        self._thread.start()

    def _consume(self) -> None:
        raise NotImplementedError

    def _arrived(self, value: bytes | str, received: float) -> None:
        ident = _ident(value)
        if ident is not None:
            self.on_arrival(ident, received)

    def send(self, ident: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _PublisherPeer(Peer):
    publisher: Publisher

    def send(self, ident: int) -> None:
        self.publisher.publish([encode(event_body(ident, 0))])

    def close(self) -> None:
        super().close()
        self.publisher.close()


class KafkaPeer(_PublisherPeer):
    def __init__(self, topic: str, on_arrival: OnArrival) -> None:
        super().__init__(on_arrival)
        self.tail = KafkaTail(topic, self._arrived)
        self.publisher = KafkaPublisher(topic)

    def close(self) -> None:
        super().close()
        self.tail.close()


class RabbitPeer(_PublisherPeer):
    def __init__(self, queue: str, on_arrival: OnArrival) -> None:
        import amqp

        super().__init__(on_arrival)
        parts = urlsplit(os.environ["AMQP_URL"])
        self.connection = amqp.Connection(
            host=f"{parts.hostname}:{parts.port or 5672}",
            userid=parts.username or "guest",
            password=parts.password or "guest",
            virtual_host=parts.path[1:] or "/",
            connect_timeout=5,
        )
        self.connection.connect()
        channel = self.connection.channel()
        channel.basic_qos(0, 10, False)
        channel.basic_consume(queue, callback=self._got, no_ack=False)
        self.publisher = RabbitPublisher(queue)
        self._start()

    def _got(self, message: Any) -> None:
        received = time.time()
        self._arrived(message.body, received)
        message.channel.basic_ack(message.delivery_tag)

    def _consume(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                self.connection.drain_events(timeout=0.1)

    def close(self) -> None:
        super().close()
        with contextlib.suppress(Exception):
            self.connection.close()


class SqsPeer(_PublisherPeer):
    def __init__(self, queue: str, on_arrival: OnArrival) -> None:
        super().__init__(on_arrival)
        self.client = sqs_client()
        self.url = self.client.get_queue_url(QueueName=queue)["QueueUrl"]
        self.publisher = SqsPublisher(queue)
        self._start()

    def _consume(self) -> None:
        while not self._stop.is_set():
            answer = self.client.receive_message(
                QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            )
            received = time.time()
            messages = answer.get("Messages", [])
            for message in messages:
                self._arrived(message["Body"], received)
            if messages:
                self.client.delete_message_batch(
                    QueueUrl=self.url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(messages)
                    ],
                )

    def close(self) -> None:
        super().close()
        self.client.close()


class PostgresPeer(Peer):
    """Rows of the database queue's table (``queues_databasemessage``) for ``queue_id``."""

    CLAIM = (
        "UPDATE queues_databasemessage SET state = 'in_flight', attempts = attempts + 1 "
        "WHERE id IN (SELECT id FROM queues_databasemessage WHERE queue_id = %s "
        "AND state = 'ready' ORDER BY id LIMIT 10 FOR UPDATE SKIP LOCKED) RETURNING id, body"
    )

    def __init__(self, url: str, queue_id: int, on_arrival: OnArrival) -> None:
        import psycopg

        super().__init__(on_arrival)
        self.queue_id = queue_id
        self.channel = f"bench_e2e_peer_{queue_id}"
        self.producer = psycopg.connect(url, autocommit=True)
        self.consumer = psycopg.connect(url, autocommit=True)
        self.consumer.execute(f"LISTEN {self.channel}")
        self._start()

    def send(self, ident: int) -> None:
        body = encode(event_body(ident, self.queue_id)).decode()
        with self.producer.transaction():
            self.producer.execute(
                "INSERT INTO queues_databasemessage (queue_id, message_id, body, headers, "
                "ordering_key, state, attempts, available_at, lease_owner, last_error, "
                "created_at) VALUES (%s, %s, %s::jsonb, '{}'::jsonb, '', 'ready', 0, now(), "
                "'', '', now())",
                (self.queue_id, uuid.uuid4(), body),
            )
            self.producer.execute(f"NOTIFY {self.channel}")

    def _consume(self) -> None:
        while not self._stop.is_set():
            rows = self.consumer.execute(self.CLAIM, (self.queue_id,)).fetchall()
            received = time.time()
            if not rows:
                # Returns at the first NOTIFY (one received during the claim is kept by
                # psycopg and returned at once), else after the timeout.
                for _ in self.consumer.notifies(timeout=0.5, stop_after=1):
                    pass
                continue
            for _, body in rows:  # jsonb: psycopg gives the parsed body
                self.on_arrival(int(body["record_id"]), received)
            self.consumer.execute(
                "DELETE FROM queues_databasemessage WHERE id = ANY(%s)", ([r[0] for r in rows],)
            )

    def close(self) -> None:
        super().close()
        self.producer.close()
        self.consumer.close()


class SqlitePeer(Peer):
    """A table of its own in the SQLite file under test."""

    def __init__(self, path: str, on_arrival: OnArrival) -> None:
        super().__init__(on_arrival)
        self.producer = self._connect(path)
        self.producer.execute(
            "CREATE TABLE IF NOT EXISTS bench_e2e_peer (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "body TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'ready')"
        )
        self.consumer = self._connect(path, same_thread=False)
        self._start()

    @staticmethod
    def _connect(path: str, *, same_thread: bool = True) -> sqlite3.Connection:
        connection = sqlite3.connect(
            path, timeout=20, isolation_level=None, check_same_thread=same_thread
        )
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    def send(self, ident: int) -> None:
        body = encode(event_body(ident, 0)).decode()
        self.producer.execute("BEGIN IMMEDIATE")
        self.producer.execute("INSERT INTO bench_e2e_peer (body) VALUES (?)", (body,))
        self.producer.execute("COMMIT")

    def _consume(self) -> None:
        while not self._stop.is_set():
            self.consumer.execute("BEGIN IMMEDIATE")
            rows = self.consumer.execute(
                "UPDATE bench_e2e_peer SET state = 'in_flight' WHERE id IN (SELECT id FROM "
                "bench_e2e_peer WHERE state = 'ready' ORDER BY id LIMIT 10) RETURNING id, body"
            ).fetchall()
            self.consumer.execute("COMMIT")
            received = time.time()
            if not rows:
                self._stop.wait(SQLITE_POLL_SECONDS)
                continue
            for _, body in rows:
                self._arrived(body, received)
            self.consumer.execute(
                f"DELETE FROM bench_e2e_peer WHERE id IN ({','.join('?' * len(rows))})",
                [r[0] for r in rows],
            )

    def close(self) -> None:
        super().close()
        self.producer.close()
        self.consumer.close()
