"""``python -m bench.worker_peer ENGINE QUEUE [--group G] [--queue-id N]``: the workers
scenario's ceiling — a bare consumer loop with the engine's own client that acknowledges every
message it receives, no Django, no handler dispatch, no middleware. Prints ``ready`` once
connected and runs until SIGTERM.

What each loop does, the cheapest correct way its client offers:

* RabbitMQ — py-amqp, ``basic.qos`` of ``--prefetch`` (10, as our worker at concurrency 10),
  one ``basic.ack`` per message;
* Kafka — confluent-kafka in the queue's consumer group, ``consume(100)``, then one
  asynchronous commit of the batch's offsets (a synchronous commit per message would measure
  the broker's commit latency, not a consumer);
* SQS — boto3 ``ReceiveMessage`` of 10 with a 1 s long poll, ``DeleteMessageBatch``;
* database — psycopg on the database queue's table: claim up to 10 ready rows with ``FOR
  UPDATE SKIP LOCKED`` (leased, as our backend does), then one ``DELETE`` of the claimed ids.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

from bench.queues import sqs_client


def rabbitmq(queue: str, stop: threading.Event, prefetch: int) -> None:
    import amqp

    parts = urlsplit(os.environ["AMQP_URL"])
    connection = amqp.Connection(
        host=f"{parts.hostname}:{parts.port or 5672}",
        userid=parts.username or "guest",
        password=parts.password or "guest",
        virtual_host=parts.path[1:] or "/",
        connect_timeout=5,
    )
    connection.connect()
    channel = connection.channel()
    channel.basic_qos(0, prefetch, False)

    def on_message(message: amqp.Message) -> None:
        channel.basic_ack(message.delivery_tag)

    channel.basic_consume(queue, callback=on_message)
    print("ready", flush=True)
    while not stop.is_set():
        try:
            connection.drain_events(timeout=0.5)
        except TimeoutError:
            continue
    connection.close()


def kafka(topic: str, stop: threading.Event, group: str) -> None:
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"],
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    print("ready", flush=True)
    while not stop.is_set():
        batch = consumer.consume(num_messages=100, timeout=0.5)
        messages = [m for m in batch if m.error() is None]
        if messages:
            consumer.commit(asynchronous=True)
    consumer.close()


def sqs(name: str, stop: threading.Event) -> None:
    client = sqs_client()
    url = client.get_queue_url(QueueName=name)["QueueUrl"]
    print("ready", flush=True)
    while not stop.is_set():
        answer = client.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        )
        messages = answer.get("Messages", [])
        if messages:
            client.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )


CLAIM = """
WITH claimed AS (
    SELECT id FROM queues_databasemessage
    WHERE queue_id = %s AND state IN ('ready', 'in_flight') AND available_at <= now()
    ORDER BY id LIMIT 10 FOR UPDATE SKIP LOCKED
)
UPDATE queues_databasemessage AS m
SET state = 'in_flight', lease_token = gen_random_uuid(),
    available_at = now() + interval '30 seconds', attempts = m.attempts + 1
FROM claimed WHERE m.id = claimed.id
RETURNING m.id, m.body
"""


def database(queue_id: int, stop: threading.Event) -> None:
    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as connection:
        print("ready", flush=True)
        while not stop.is_set():
            rows = connection.execute(CLAIM, [queue_id]).fetchall()
            if not rows:
                stop.wait(0.05)
                continue
            connection.execute(
                "DELETE FROM queues_databasemessage WHERE id = ANY(%s)", [[r[0] for r in rows]]
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("engine", choices=["rabbitmq", "kafka", "sqs", "database"])
    parser.add_argument("queue", help="queue (RabbitMQ, SQS) or topic (Kafka) name")
    parser.add_argument("--group", default="", help="Kafka consumer group")
    parser.add_argument("--queue-id", type=int, default=0, help="database queue's id")
    parser.add_argument("--prefetch", type=int, default=10, help="RabbitMQ basic.qos")
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    loops: dict[str, Callable[[], None]] = {
        "rabbitmq": lambda: rabbitmq(args.queue, stop, args.prefetch),
        "kafka": lambda: kafka(args.queue, stop, args.group),
        "sqs": lambda: sqs(args.queue, stop),
        "database": lambda: database(args.queue_id, stop),
    }
    loops[args.engine]()


if __name__ == "__main__":
    main()
