"""Scenario 4 — workers: no-op messages per second through one worker process.

Ours: ``manage.py runworker QUEUE --concurrency C --handlers-module bench.noop`` (a subprocess
with the worker's default middleware: heartbeat, lifecycle log, leases, retries — what a real
worker pays besides the handler), C = 1 and 10, per engine. The handler calls ``ctx.ack()``.

Peers, each a process of its own, reading a queue of its own filled the same way:

* the bare consumer loop of ``bench.worker_peer`` (the engine's client, an acknowledgement per
  message, no Django): the ceiling, per engine;
* on RabbitMQ, a Celery worker running a no-op task (``bench.celery_peer``, ``acks_late``) with
  ``--pool prefork`` and ``--pool threads``, concurrency 10.

How a rate is measured, the same for every consumer: N messages are put on its queue while
nothing consumes; the consumer starts; the bench samples how many are left every 20 ms, from
the engine itself (RabbitMQ ``queue.declare passive``; Kafka end offsets minus the group's
committed offsets; SQS visible + in-flight; the database queue's rows). The rate is taken
between the samples where 5% and 95% of N were consumed, so a process's start (Django set-up,
a Kafka group join, Celery's boot) and the last stragglers are not counted. Targets (RabbitMQ,
concurrency 10): at least 2x Celery, at least 0.5x the bare loop.

Batch row (RabbitMQ, c=10): records written by a batch handler's bulk create against one
create per message by a single handler, drained the same way (``bench.batch_handlers``).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench.harness import ROOT, Row, Target, interleave, paired
from bench.options import BenchError, Options
from bench.processes import LOGS
from bench.queues import amqp_channel, sqs_client
from bench.setup import Bench

NAME = "workers"
TITLE = "Workers: no-op messages per second, one worker process, concurrency 1 and 10"

#: Messages per measurement, full size: about 5 s of draining at the rates seen here.
COUNTS = {"rabbitmq": 15_000, "kafka": 10_000, "sqs": 3_000, "database": 4_000}
#: --quick: enough for a few samples inside the timed window, not for figures.
QUICK_COUNTS = {"rabbitmq": 2_000, "kafka": 1_000, "sqs": 300, "database": 300}
#: The window of the drain that is timed, as fractions of N consumed.
WINDOW = (0.05, 0.95)
SAMPLE_SECONDS = 0.02
CELERY_TARGET = Target(2.0)
BARE_TARGET = Target(0.5)


# -- the engines' side: filling a queue, counting what is left ---------------------------------


def _body(n: int) -> bytes:
    return json.dumps({"handler": "noop", "n": n}, separators=(",", ":")).encode()


def fill_rabbitmq(name: str, count: int, body: Callable[[int], bytes] = _body) -> None:
    """Persistent messages as our backend publishes them, without confirms (the fill is not
    measured; ``left`` sees them all arrive before the consumer starts)."""
    import amqp

    from queues.messages import HEADER_MESSAGE_ID

    with amqp_channel() as channel:
        for n in range(count):
            message_id = str(uuid.uuid4())
            channel.basic_publish(
                amqp.Message(
                    body(n),
                    delivery_mode=2,
                    content_type="application/json",
                    content_encoding="utf-8",
                    message_id=message_id,
                    application_headers={HEADER_MESSAGE_ID: message_id},
                ),
                exchange="",
                routing_key=name,
            )


def rabbitmq_left(name: str, stack: contextlib.ExitStack) -> Callable[[], int]:
    channel = stack.enter_context(amqp_channel())

    def left() -> int:
        return int(channel.queue_declare(queue=name, passive=True).message_count)

    return left


def rabbitmq_purge(name: str) -> Callable[[], None]:
    def purge() -> None:
        with amqp_channel() as channel:
            channel.queue_purge(name)

    return purge


def fill_with_backend(queue: Any, count: int) -> None:
    from queues.backends import get_backend
    from queues.messages import OutgoingMessage

    with get_backend(queue) as backend:
        for start in range(0, count, 500):
            backend.publish(
                [
                    OutgoingMessage.new({"handler": "noop", "n": n}, ordering_key=str(n))
                    for n in range(start, min(count, start + 500))
                ]
            )


def kafka_left(topic: str, group: str) -> Callable[[], int]:
    """End offsets minus the group's committed offsets, read with the admin API (a consumer
    with the group's id, even one that never subscribes, talks to the group's coordinator on
    the consumers' behalf; the admin client only reads)."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import AdminClient, OffsetSpec

    admin = AdminClient({"bootstrap.servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"]})
    count = len(admin.list_topics(topic, timeout=10).topics[topic].partitions)
    partitions = [TopicPartition(topic, p) for p in range(count)]

    def left() -> int:
        request = [ConsumerGroupTopicPartitions(group, partitions)]
        (future,) = admin.list_consumer_group_offsets(request).values()
        committed = {tp.partition: tp.offset for tp in future.result(timeout=10).topic_partitions}
        ends = admin.list_offsets({tp: OffsetSpec.latest() for tp in partitions})
        starts = admin.list_offsets({tp: OffsetSpec.earliest() for tp in partitions})
        total = 0
        for tp in partitions:
            high = ends[tp].result(timeout=10).offset
            low = starts[tp].result(timeout=10).offset
            position = committed.get(tp.partition, -1)
            total += high - (position if position >= 0 else low)
        return total

    return left


def sqs_left(name: str) -> Callable[[], int]:
    client = sqs_client()
    url = client.get_queue_url(QueueName=name)["QueueUrl"]

    def left() -> int:
        attributes = client.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    return left


def database_left(queue: Any) -> Callable[[], int]:
    from queues.models import DatabaseMessage

    def left() -> int:
        return int(DatabaseMessage.objects.filter(queue=queue).count())

    return left


# -- consumers ----------------------------------------------------------------------------------


class ConsumerProcess:
    """A consumer under test in a process of its own; its output goes to ``var/bench/``."""

    def __init__(self, label: str, command: list[str], env: dict[str, str]) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        self.label = label
        self.log_path = LOGS / f"workers-{label}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_for_output(self, text: str, timeout: float = 60) -> None:
        """Until the process printed ``text`` (its ready line)."""
        deadline = time.monotonic() + timeout
        while text not in self.log_path.read_text(errors="replace"):
            if not self.alive() or time.monotonic() > deadline:
                raise BenchError(f"{self.label} did not print {text!r}; see {self.log_path}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def drain_rate(
    label: str,
    count: int,
    fill: Callable[[int], None],
    left: Callable[[], int],
    start: Callable[[], ConsumerProcess],
    timeout: float,
    purge: Callable[[], None] | None = None,
) -> float:
    """Fill ``count`` messages, start the consumer, and return the messages per second it
    consumed between 5% and 95% of the drain."""
    already = left()
    if already and purge is not None:
        # RabbitMQ counts only ready messages: a consumer stopped once none were ready gave
        # back the ones it still held (prefetched, unacknowledged). Not part of any window.
        purge()
        already = left()
    if already:
        raise BenchError(f"{label}: {already} messages left from an earlier measurement")
    fill(count)
    deadline = time.monotonic() + 120
    while (seen := left()) < count:
        if time.monotonic() > deadline:
            raise BenchError(f"{label}: only {seen} of {count} messages arrived on the queue")
        time.sleep(SAMPLE_SECONDS)
    first_mark, last_mark = (count * (1 - WINDOW[0]), count * (1 - WINDOW[1]))
    consumer = start()
    try:
        begin: tuple[float, int] | None = None
        deadline = time.monotonic() + timeout
        while True:
            now, remaining = time.perf_counter(), left()
            if begin is None and remaining <= first_mark:
                begin = (now, remaining)
            if begin is not None and remaining <= last_mark:
                elapsed = now - begin[0]
                rate = (begin[1] - remaining) / elapsed if elapsed > 0 else float("nan")
                break
            if not consumer.alive():
                raise BenchError(f"{label} exited; see {consumer.log_path}")
            if time.monotonic() > deadline:
                raise BenchError(f"{label}: {remaining} of {count} messages left after {timeout}s")
            time.sleep(SAMPLE_SECONDS)
        deadline = time.monotonic() + 60
        while left():
            if time.monotonic() > deadline:
                raise BenchError(f"{label} left messages on its queue; see {consumer.log_path}")
            time.sleep(SAMPLE_SECONDS)
    finally:
        consumer.stop()
    return rate


def ours(
    bench: Bench, queue: Any, concurrency: int, handlers: str = "bench.noop", label: str = ""
) -> Callable[[], ConsumerProcess]:
    label = label or f"ours-{queue.type}-c{concurrency}"
    command = [
        sys.executable,
        "manage.py",
        "runworker",
        queue.name,
        "--concurrency",
        str(concurrency),
        "--handlers-module",
        handlers,
    ]
    return lambda: ConsumerProcess(label, command, bench.child_env())


def bare(bench: Bench, queue: Any, group: str = "") -> Callable[[], ConsumerProcess]:
    command = [sys.executable, "-m", "bench.worker_peer", queue.type, queue.name]
    command += ["--queue-id", str(queue.pk), "--group", group or f"bench-bare-{queue.name}"]
    return lambda: ConsumerProcess(f"bare-{queue.type}", command, bench.child_env())


#: What each consumer prints once it consumes (memory scenario: idle is measured after it).
READY = {"ours": "worker: serving", "bare": "ready", "celery": "ready."}


def celery(
    bench: Bench, name: str, pool: str, loglevel: str = "WARNING"
) -> Callable[[], ConsumerProcess]:
    command = [
        str(ROOT / ".venv" / "bin" / "celery"),
        "-A",
        "bench.celery_peer",
        "worker",
        "-Q",
        name,
        "--pool",
        pool,
        "--concurrency",
        "10",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel",
        loglevel,
    ]
    if not os.path.exists(command[0]):
        command[0:1] = [sys.executable, "-m", "celery"]
    return lambda: ConsumerProcess(f"celery-{pool}", command, bench.child_env())


def declare_celery_queue(name: str) -> None:
    """The queue as Celery declares it for ``-Q name``: durable, bound to a direct exchange of
    the same name."""
    import kombu

    from bench.celery_peer import app

    with app.connection_for_write() as connection:
        exchange = kombu.Exchange(name, type="direct", durable=True)
        kombu.Queue(name, exchange, routing_key=name)(connection.default_channel).declare()


def delete_celery_queue(name: str) -> None:
    with contextlib.suppress(Exception), amqp_channel() as channel:
        channel.queue_delete(name)
        channel.exchange_delete(name)


def fill_celery(name: str, count: int) -> None:
    from bench.celery_peer import app

    with app.producer_or_acquire() as producer:
        for n in range(count):
            app.send_task("noop", args=[n], queue=name, producer=producer)


# -- the scenario -------------------------------------------------------------------------------


def run(bench: Bench, options: Options) -> list[Row]:
    repeats, _ = options.size(quick=(1, 1.0), full=(3, 5.0))
    rows: list[Row] = []
    details: dict[str, Any] = {"repeats": repeats, "window": WINDOW}
    for engine in options.engines:
        count = (QUICK_COUNTS if options.quick else COUNTS)[engine]
        details[engine] = {"messages": count}
        with contextlib.ExitStack() as stack:
            rows.extend(_engine(bench, engine, count, repeats, stack))
    if "rabbitmq" in options.engines:
        from bench.batch_handlers import batch_row  # imports Django models: after set-up

        rows.append(batch_row(bench, options.quick, repeats, details))
    bench.details[NAME] = details
    return rows


def _source(
    bench: Bench, engine: str, purpose: str, stack: contextlib.ExitStack
) -> tuple[Any, Callable[[int], None], Any]:
    """A queue of its own for one consumer: (queue, fill, left)."""
    queue = bench.make_queue(engine, purpose, visibility_timeout=30, max_attempts=5)
    if engine == "rabbitmq":
        return queue, lambda n: fill_rabbitmq(queue.name, n), rabbitmq_left(queue.name, stack)
    fill: Callable[[int], None] = lambda n: fill_with_backend(queue, n)  # noqa: E731
    if engine == "kafka":
        from queues.backends.kafka import KafkaBackend

        group = KafkaBackend(queue).group_id if purpose.startswith("ours") else ""
        return queue, fill, kafka_left(queue.name, group or f"bench-bare-{queue.name}")
    if engine == "sqs":
        return queue, fill, sqs_left(queue.name)
    return queue, fill, database_left(queue)


def _engine(
    bench: Bench, engine: str, count: int, repeats: int, stack: contextlib.ExitStack
) -> list[Row]:
    timeout = 600.0
    results: dict[str, list[float]] = {}
    measures: list[Callable[[int], None]] = []

    def measure(key: str, queue_fill_left: tuple[Any, Any, Any], start: Any) -> None:
        queue, fill, left = queue_fill_left
        name = str(getattr(queue, "name", queue))  # a Queue, or Celery's queue name

        def one(_: int) -> None:
            purge = rabbitmq_purge(name) if engine == "rabbitmq" else None
            rate = drain_rate(f"{key} on {engine}", count, fill, left, start, timeout, purge)
            results.setdefault(key, []).append(rate)

        measures.append(one)

    for concurrency in (1, 10):
        source = _source(bench, engine, f"ours-c{concurrency}", stack)
        measure(f"ours-c{concurrency}", source, ours(bench, source[0], concurrency))
    bare_source = _source(bench, engine, "bare", stack)
    measure("bare", bare_source, bare(bench, bare_source[0]))
    if engine == "rabbitmq":
        for pool in ("prefork", "threads"):
            name = f"bench-{bench.run_id}-celery-{pool}"
            declare_celery_queue(name)
            stack.callback(delete_celery_queue, name)
            measure(
                f"celery-{pool}",
                (name, lambda n, q=name: fill_celery(q, n), rabbitmq_left(name, stack)),
                celery(bench, name, pool),
            )
    interleave(repeats, *measures)

    unit = "msg/s"
    rows = []
    for concurrency in (1, 10):
        key = f"ours-c{concurrency}"
        target = BARE_TARGET if engine == "rabbitmq" and concurrency == 10 else None
        rows.append(
            paired(
                NAME,
                f"{engine}, concurrency {concurrency}",
                unit,
                results[key],
                "bare consume+ack loop",
                results["bare"],
                target,
            )
        )
    if engine == "rabbitmq":
        for pool in ("prefork", "threads"):
            rows.append(
                paired(
                    NAME,
                    f"{engine}, concurrency 10",
                    unit,
                    results["ours-c10"],
                    f"Celery {pool} c=10",
                    results[f"celery-{pool}"],
                    CELERY_TARGET,
                )
            )
    return rows
