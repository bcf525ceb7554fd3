"""The bench's queues and messages: queues with names unique to the run, provisioned on the
real engines and deleted from the brokers afterwards; the orders table linked to a queue; the
engines' own clients (py-amqp, boto3) for the peers and the clean-up; message bodies.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from queues.models import Queue
    from zstorage.models import Table


def provision_queue(name: str, engine: str, **options: Any) -> Queue:
    """A queue called ``name`` on ``engine``, saved and provisioned on the engine."""
    from queues.backends import get_backend
    from queues.models import Queue

    queue = Queue(name=name, type=engine, url="", **options)
    queue.full_clean()
    queue.save()
    with get_backend(queue) as backend:
        backend.provision()
    return queue


def delete_broker_queues(queues: Iterable[Queue]) -> None:
    """Delete the queues' topics and queues (with their retry and dead-letter companions) from
    Kafka, RabbitMQ and SQS, as best it can: a clean-up never fails the run."""
    queues = list(queues)
    kafka = [q.name for q in queues if q.type == "kafka"]
    rabbit = [q.name for q in queues if q.type == "rabbitmq"]
    sqs = [q.name for q in queues if q.type == "sqs"]
    if kafka:
        with contextlib.suppress(Exception):
            from confluent_kafka.admin import AdminClient

            admin = AdminClient({"bootstrap.servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"]})
            topics = [f"{n}{s}" for n in kafka for s in ("", ".retry", ".dlq")]
            for future in admin.delete_topics(topics, operation_timeout=10).values():
                with contextlib.suppress(Exception):
                    future.result(timeout=15)
    if rabbit:
        with contextlib.suppress(Exception), amqp_channel() as channel:
            for name in rabbit:
                for suffix in ("", ".retry", ".dlq"):
                    with contextlib.suppress(Exception):
                        channel.queue_delete(name + suffix)
    if sqs:
        with contextlib.suppress(Exception):
            client = sqs_client()
            for name in sqs:
                for suffix in ("", "-dlq"):
                    with contextlib.suppress(Exception):
                        url = client.get_queue_url(QueueName=name + suffix)["QueueUrl"]
                        client.delete_queue(QueueUrl=url)


def orders_table(slug: str, queue: Queue | None, *, handler: str) -> Table:
    """A small orders-like table, linked to ``queue`` with ``handler`` when one is given."""
    from queues.models import QueueLink
    from zstorage import schema

    table = schema.create_table(slug.replace("-", " ").title(), slug)
    schema.add_field(table, name="Number", key="number", type="text", required=True)
    schema.add_field(table, name="Total", key="total", type="decimal")
    schema.add_field(
        table,
        name="Status",
        key="status",
        type="choice",
        options={"choices": ["new", "paid", "shipped"]},
    )
    schema.add_field(table, name="Notes", key="notes", type="long_text")
    if queue is not None:
        QueueLink.objects.create(table=table, queue=queue, handler=handler)
    return table


@contextlib.contextmanager
def amqp_channel(confirm: bool = False) -> Iterator[Any]:
    import amqp

    parts = urlsplit(os.environ["AMQP_URL"])
    vhost = parts.path[1:] or "/"
    connection = amqp.Connection(
        host=f"{parts.hostname}:{parts.port or 5672}",
        userid=parts.username or "guest",
        password=parts.password or "guest",
        virtual_host=vhost,
        connect_timeout=5,
        confirm_publish=confirm,
    )
    connection.connect()
    try:
        yield connection.channel()
    finally:
        with contextlib.suppress(Exception):
            connection.close()


def sqs_client() -> Any:
    import boto3

    return boto3.client(
        "sqs",
        endpoint_url=os.environ["SQS_ENDPOINT_URL"],
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    )


def message_body(seq: int, *, size: int = 200) -> dict[str, Any]:
    """A publish-API message of about ``size`` bytes of JSON, for a handler the web process
    knows (the publish API refuses one registered nowhere: ``unknown_handler``)."""
    body: dict[str, Any] = {"handler": "log", "seq": seq, "to": "ada@example.com", "pad": ""}
    body["pad"] = "x" * max(0, size - len(str(body)))
    return body


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
