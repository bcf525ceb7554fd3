"""One small adapter per engine for the parametrised backend tests.

Each adapter makes a queue on the real service and reads the engine back with the engine's
OWN client (boto3, confluent-kafka, py-amqp, a Django query) — never through the backend under
test — so a test proves what the broker really holds.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

from queues.backends import get_backend
from queues.backends.base import Backend
from queues.messages import HEADER_MESSAGE_ID, HEADER_REASON
from queues.models import DatabaseMessage, MessageState, Queue, QueueType
from tests.queues.helpers import wait_for
from tests.services import service_env


@dataclass
class Record:
    """A message as the engine's own client sees it."""

    message_id: str
    body: bytes
    reason: str | None = None
    partition: int | None = None
    offset: int | None = None


def unique_name(engine: str) -> str:
    return f"t-{engine}-{uuid.uuid4().hex[:10]}"


class Engine:
    type: ClassVar[str]
    #: The engine hides a fetched message for the visibility timeout, then delivers it again.
    has_visibility_timeout: ClassVar[bool] = False
    #: A redelivery after a consumer crash counts as the next attempt.
    counts_redeliveries: ClassVar[bool] = True
    unreachable_url: ClassVar[str | None] = None

    def __init__(self) -> None:
        self.created: list[Queue] = []

    def url(self) -> str:
        return ""

    def make_queue(self, **options: Any) -> Queue:
        options.setdefault("visibility_timeout", 1)
        queue = Queue(name=unique_name(self.type), type=self.type, url=self.url(), **options)
        queue.full_clean()
        queue.save()
        self.created.append(queue)
        return queue

    def redeliver(self, backend: Backend) -> Backend:
        """What makes an unacknowledged message come back: waiting out the visibility timeout
        (same consumer), or the consumer going away (a new one reads it)."""
        return backend

    def read_back(self, queue: Queue, count: int) -> list[Record]:
        raise NotImplementedError

    def read_dead_letters(self, queue: Queue, count: int) -> list[Record]:
        raise NotImplementedError

    def unacknowledged(self, queue: Queue, backend: Backend) -> int:
        """Messages the engine still holds for the queue (ready or in flight)."""
        raise NotImplementedError

    def is_provisioned(self, queue: Queue) -> bool:
        raise NotImplementedError

    def cleanup(self) -> None:
        pass


class DatabaseEngine(Engine):
    type = QueueType.DATABASE
    has_visibility_timeout = True

    def read_back(self, queue: Queue, count: int) -> list[Record]:
        rows = DatabaseMessage.objects.filter(queue=queue).order_by("id")
        return [Record(str(r.message_id), json.dumps(r.body).encode(), offset=r.pk) for r in rows]

    def read_dead_letters(self, queue: Queue, count: int) -> list[Record]:
        rows = DatabaseMessage.objects.filter(queue=queue, state=MessageState.DEAD).order_by("id")
        return [Record(str(r.message_id), json.dumps(r.body).encode(), r.last_error) for r in rows]

    def unacknowledged(self, queue: Queue, backend: Backend) -> int:
        return DatabaseMessage.objects.filter(queue=queue).exclude(state=MessageState.DEAD).count()

    def is_provisioned(self, queue: Queue) -> bool:
        return True


class SqsEngine(Engine):
    type = QueueType.SQS
    has_visibility_timeout = True
    unreachable_url = "http://127.0.0.1:1"

    def url(self) -> str:
        return service_env("SQS_ENDPOINT_URL")

    @property
    def client(self) -> Any:
        import boto3

        if not hasattr(self, "_client"):
            self._client = boto3.client(
                "sqs",
                endpoint_url=self.url(),
                region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            )
        return self._client

    def _url(self, name: str) -> str:
        return str(self.client.get_queue_url(QueueName=name)["QueueUrl"])

    def _receive(self, name: str, count: int) -> list[Record]:
        records: dict[str, Record] = {}

        def more() -> bool:
            response = self.client.receive_message(
                QueueUrl=self._url(name),
                MaxNumberOfMessages=10,
                WaitTimeSeconds=1,
                MessageAttributeNames=["All"],
            )
            for m in response.get("Messages", []):
                attributes = {
                    k: v["StringValue"] for k, v in m.get("MessageAttributes", {}).items()
                }
                records[attributes[HEADER_MESSAGE_ID]] = Record(
                    attributes[HEADER_MESSAGE_ID],
                    m["Body"].encode(),
                    attributes.get(HEADER_REASON),
                )
            return len(records) >= count

        wait_for(more, 10, f"{count} message(s) in SQS queue {name}")
        return list(records.values())

    def read_back(self, queue: Queue, count: int) -> list[Record]:
        return self._receive(queue.name, count)

    def read_dead_letters(self, queue: Queue, count: int) -> list[Record]:
        return self._receive(f"{queue.name}-dlq", count)

    def unacknowledged(self, queue: Queue, backend: Backend) -> int:
        attributes = self.client.get_queue_attributes(
            QueueUrl=self._url(queue.name), AttributeNames=["All"]
        )["Attributes"]
        return sum(
            int(attributes.get(name, 0))
            for name in (
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            )
        )

    def is_provisioned(self, queue: Queue) -> bool:
        main = self.client.get_queue_attributes(
            QueueUrl=self._url(queue.name), AttributeNames=["All"]
        )["Attributes"]
        redrive = json.loads(main["RedrivePolicy"])
        dlq_arn = self.client.get_queue_attributes(
            QueueUrl=self._url(f"{queue.name}-dlq"), AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        return (
            redrive["deadLetterTargetArn"] == dlq_arn
            and int(redrive["maxReceiveCount"]) == queue.max_attempts
            and int(main["VisibilityTimeout"]) == queue.visibility_timeout
        )

    def cleanup(self) -> None:
        for queue in self.created:
            for name in (queue.name, f"{queue.name}-dlq"):
                with contextlib.suppress(Exception):
                    self.client.delete_queue(QueueUrl=self._url(name))


class KafkaEngine(Engine):
    type = QueueType.KAFKA
    counts_redeliveries = False
    unreachable_url = "127.0.0.1:1"

    def url(self) -> str:
        return service_env("KAFKA_BOOTSTRAP_SERVERS")

    def make_queue(self, **options: Any) -> Queue:
        options.setdefault("partitions", 3)
        return super().make_queue(**options)

    def redeliver(self, backend: Backend) -> Backend:
        backend.close()  # leaves the group without committing
        return get_backend(backend.queue)

    def _consumer(self, group: str | None = None) -> Any:
        from confluent_kafka import Consumer

        return Consumer(
            {
                "bootstrap.servers": self.url(),
                "group.id": group or f"test-reader-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
            }
        )

    def _read(self, topic: str, count: int) -> list[Record]:
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        consumer = self._consumer()
        try:
            partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
            records: list[Record] = []

            def more() -> bool:
                for m in consumer.consume(num_messages=count, timeout=0.2):
                    assert m.error() is None, m.error()
                    headers = {k: (v or b"").decode() for k, v in m.headers() or []}
                    records.append(
                        Record(
                            headers[HEADER_MESSAGE_ID],
                            m.value(),
                            headers.get(HEADER_REASON),
                            m.partition(),
                            m.offset(),
                        )
                    )
                return len(records) >= count

            wait_for(more, 15, f"{count} record(s) in topic {topic}")
            return records
        finally:
            consumer.close()

    def read_back(self, queue: Queue, count: int) -> list[Record]:
        return self._read(queue.name, count)

    def read_dead_letters(self, queue: Queue, count: int) -> list[Record]:
        return self._read(f"{queue.name}.dlq", count)

    def committed(self, queue: Queue, partition: int = 0) -> int:
        from confluent_kafka import TopicPartition

        consumer = self._consumer(group=f"quaymaster.{queue.name}")
        try:
            (tp,) = consumer.committed([TopicPartition(queue.name, partition)], timeout=10)
            return int(tp.offset)
        finally:
            consumer.close()

    def messages_in_topic(self, queue: Queue) -> int:
        """Everything the queue's topic holds, duplicates included (the sum of the high
        watermarks)."""
        from confluent_kafka import TopicPartition

        consumer = self._consumer(group=unique_name("count"))
        try:
            return sum(
                consumer.get_watermark_offsets(TopicPartition(queue.name, p), timeout=10)[1]
                for p in range(queue.effective_partitions)
            )
        finally:
            consumer.close()

    def unacknowledged(self, queue: Queue, backend: Backend) -> int:
        from confluent_kafka import TopicPartition

        consumer = self._consumer(group=f"quaymaster.{queue.name}")
        try:
            total = 0
            for topic in (queue.name, f"{queue.name}.retry"):
                partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
                tps = [TopicPartition(topic, p) for p in partitions]
                for tp in consumer.committed(tps, timeout=10):
                    low, high = consumer.get_watermark_offsets(tp, timeout=10)
                    total += high - (tp.offset if tp.offset >= 0 else low)
            return total
        finally:
            consumer.close()

    def is_provisioned(self, queue: Queue) -> bool:
        from confluent_kafka.admin import AdminClient

        topics = AdminClient({"bootstrap.servers": self.url()}).list_topics(timeout=10).topics
        names = (queue.name, f"{queue.name}.retry", f"{queue.name}.dlq")
        return all(n in topics and len(topics[n].partitions) == queue.partitions for n in names)

    def cleanup(self) -> None:
        from confluent_kafka.admin import AdminClient

        topics = [f"{q.name}{suffix}" for q in self.created for suffix in ("", ".retry", ".dlq")]
        if topics:
            AdminClient({"bootstrap.servers": self.url()}).delete_topics(
                topics, operation_timeout=10
            )


class RabbitMqEngine(Engine):
    type = QueueType.RABBITMQ
    unreachable_url = "amqp://127.0.0.1:1/"

    def url(self) -> str:
        # Queue urls carry no credentials: the test queue uses the deployment's AMQP_URL.
        service_env("AMQP_URL")
        return ""

    def redeliver(self, backend: Backend) -> Backend:
        backend.close()  # the channel closes: RabbitMQ requeues what was not acknowledged
        return get_backend(backend.queue)

    @contextlib.contextmanager
    def _channel(self) -> Any:
        from urllib.parse import unquote, urlsplit

        import amqp

        parts = urlsplit(service_env("AMQP_URL"))
        vhost = unquote(parts.path[1:]) or "/"
        connection = amqp.Connection(
            host=f"{parts.hostname}:{parts.port or 5672}",
            userid=unquote(parts.username or "guest"),
            password=unquote(parts.password or "guest"),
            virtual_host=vhost,
            connect_timeout=5,
        )
        connection.connect()
        try:
            yield connection.channel()
        finally:
            connection.close()  # unacknowledged basic_get messages return to their queue

    def _get(self, name: str, count: int) -> list[Record]:
        records: list[Record] = []
        with self._channel() as channel:

            def more() -> bool:
                message = channel.basic_get(name, no_ack=False)
                if message is not None:
                    headers = message.properties.get("application_headers") or {}
                    records.append(
                        Record(
                            message.properties["message_id"],
                            message.body,
                            headers.get(HEADER_REASON),
                        )
                    )
                return len(records) >= count

            wait_for(more, 10, f"{count} message(s) in RabbitMQ queue {name}")
        return records

    def read_back(self, queue: Queue, count: int) -> list[Record]:
        return self._get(queue.name, count)

    def read_dead_letters(self, queue: Queue, count: int) -> list[Record]:
        return self._get(f"{queue.name}.dlq", count)

    def unacknowledged(self, queue: Queue, backend: Backend) -> int:
        backend.close()  # what our consumer held unacknowledged goes back to the queue
        with self._channel() as channel:
            return int(channel.queue_declare(queue.name, passive=True).message_count)

    def is_provisioned(self, queue: Queue) -> bool:
        with self._channel() as channel:
            for name in (queue.name, f"{queue.name}.retry", f"{queue.name}.dlq"):
                channel.queue_declare(name, passive=True)
        return True

    def cleanup(self) -> None:
        with contextlib.suppress(Exception), self._channel() as channel:
            for queue in self.created:
                for name in (queue.name, f"{queue.name}.retry", f"{queue.name}.dlq"):
                    channel.queue_delete(name)


ENGINES: dict[str, type[Engine]] = {
    "database": DatabaseEngine,
    "sqs": SqsEngine,
    "kafka": KafkaEngine,
    "rabbitmq": RabbitMqEngine,
}
