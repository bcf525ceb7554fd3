"""Scenario 3 — the outbox relay.

Throughput, per engine: ``N`` (5,000) pending outbox rows (bodies and ordering keys as record
events make them) are committed in one transaction while ``manage.py relay`` (a subprocess,
default options: batches of 500) waits; the clock runs from that commit until the queue has no
pending row (polled every 5 ms). Peer: a plain loop publishing the same bodies in the same
batches with the engine's own client and the same guarantee, no database (RabbitMQ: each batch
sent whole on a confirm channel, then all its confirms awaited). Target: relay ≥ 50% of the
loop on Kafka and RabbitMQ.

Commit-to-broker latency, on Kafka: records are created through ``zstorage.records`` (the
real write path: outbox row + NOTIFY on commit) at a fixed rate; a consumer tails the topic.
latency = time the consumer got the event minus the time the write's commit returned (one clock: all
on this machine). Two relays, one at a time: LISTEN/NOTIFY isolated (``--poll-seconds 30``)
and polling alone (``--no-listen --poll-seconds 0.5``). Peer: the Kafka client producing one
message per write at the same rate (flush per message), tailed the same way.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

from bench.clients import KafkaPublisher, KafkaTail, encode, publisher
from bench.harness import Row, Target, interleave, paired, percentile
from bench.options import BenchError, Options
from bench.processes import RelayProcess
from bench.queues import chunks
from bench.setup import Bench

NAME = "relay"
TITLE = "Relay: outbox rows published per second, commit-to-broker latency"

BATCH = 500  # manage.py relay's default --batch-size
TARGETS = {"kafka": Target(0.5), "rabbitmq": Target(0.5)}
WRITE_RATE = 100.0  # writes per second for the latency runs


def event_body(i: int, queue_id: int) -> dict[str, Any]:
    """A record event as ``queues.outbox.event_message`` builds it."""
    return {
        "handler": "bench",
        "message_id": str(uuid.uuid4()),
        "event": "create",
        "table": "orders",
        "record_id": i,
        "version": 1,
        "data": {"number": f"SO-{i}", "total": "129.90", "status": "new", "notes": "x" * 80},
        "changed_fields": ["notes", "number", "status", "total"],
        "actor": "bench",
        "time": "2026-11-23T14:02:11.123456+00:00",
    }


def fill(queue: Any, count: int) -> None:
    """Commit ``count`` pending rows for ``queue`` in one transaction, then wake the relays."""
    from django.db import connection, transaction

    from queues.models import OutboxMessage
    from queues.outbox import NOTIFY_CHANNEL

    rows = []
    for i in range(count):
        body = event_body(i, queue.pk)
        rows.append(
            OutboxMessage(
                message_id=body["message_id"],
                queue_id=queue.pk,
                ordering_key=f"orders:{i}",
                body=body,
            )
        )
    with transaction.atomic():
        OutboxMessage.objects.bulk_create(rows, batch_size=2000)
    with connection.cursor() as cursor:
        cursor.execute(f"NOTIFY {NOTIFY_CHANNEL}")


def pending(queue: Any) -> int:
    from queues.models import OutboxMessage, OutboxState

    return OutboxMessage.objects.filter(queue=queue, state=OutboxState.PENDING).count()


def any_pending(queue: Any) -> bool:
    """Cheaper than counting, polled every 5 ms while the relay works on the same database."""
    from queues.models import OutboxMessage, OutboxState

    return OutboxMessage.objects.filter(queue=queue, state=OutboxState.PENDING).exists()


def drain_seconds(queue: Any, count: int, timeout: float) -> float:
    """Fill, then the seconds until the relay left nothing pending for the queue."""
    from queues.models import OutboxMessage

    fill(queue, count)
    started = time.perf_counter()
    deadline = started + timeout
    while any_pending(queue):
        if time.perf_counter() > deadline:
            raise BenchError(f"the relay left {pending(queue)} rows of {queue.name} pending")
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    OutboxMessage.objects.filter(queue=queue).delete()
    return elapsed


def peer_seconds(queue: Any, count: int) -> float:
    bodies = [encode(event_body(i, queue.pk)) for i in range(count)]
    with publisher(queue) as peer:
        peer.publish(bodies[:10])  # connect first, as the relay's warm-up did
        started = time.perf_counter()
        for chunk in chunks(bodies, BATCH):
            peer.publish(chunk)
        return time.perf_counter() - started


# -- latency ------------------------------------------------------------------------------------


class Arrivals:
    """Receive times by key, filled by a tail consumer thread."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.times: dict[Any, float] = {}
        self.lock = threading.Lock()

    def __call__(self, value: bytes, received: float) -> None:
        try:
            ident = json.loads(value)[self.key]
        except (ValueError, KeyError, TypeError):
            return
        with self.lock:
            self.times.setdefault(ident, received)

    def wait_for(self, idents: list[Any], timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                missing = sum(1 for i in idents if i not in self.times)
            if not missing:
                return 0
            time.sleep(0.05)
        return missing


def paced(count: int, rate: float, write: Any) -> None:
    """Call ``write(i)`` ``count`` times at ``rate`` per second (open loop: a slow write does
    not delay the schedule of the next ones more than it must)."""
    start = time.perf_counter()
    for i in range(count):
        due = start + i / rate
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        write(i)


def relay_latency(bench: Bench, table: Any, queue: Any, seconds: float, *, polling: bool) -> dict:
    from zstorage import records

    arrivals = Arrivals("record_id")
    tail = KafkaTail(queue.name, arrivals)
    args = ("--no-listen", "--poll-seconds", "0.5") if polling else ("--poll-seconds", "30")
    name = "relay-polling" if polling else "relay-notify"
    relay = RelayProcess(bench.child_env(), *args, name=name).wait_ready()
    try:
        committed: dict[int, float] = {}

        def write(i: int) -> None:
            record = records.create_record(table, {"number": f"L-{i}", "status": "new"})
            committed[record.pk] = time.time()

        paced(10, 20, write)  # warm-up: the relay's producer connects, the tail catches up
        arrivals.wait_for(list(committed), 20)
        committed.clear()
        paced(int(seconds * WRITE_RATE), WRITE_RATE, write)
        missing = arrivals.wait_for(list(committed), 30)
    finally:
        relay.stop()
        tail.close()
    latencies = [arrivals.times[k] - t for k, t in committed.items() if k in arrivals.times]
    return {
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": max(latencies) * 1000 if latencies else float("nan"),
        "count": len(latencies),
        "missing": missing,
    }


def client_latency(queue: Any, seconds: float) -> dict:
    arrivals = Arrivals("seq")
    tail = KafkaTail(queue.name, arrivals)
    sent: dict[int, float] = {}
    try:
        with KafkaPublisher(queue.name) as peer:

            def write(i: int) -> None:
                sent[i] = time.time()
                peer.publish([json.dumps({"handler": "bench", "seq": i}).encode()])

            paced(10, 20, write)
            arrivals.wait_for(list(sent), 20)
            sent.clear()
            paced(int(seconds * WRITE_RATE), WRITE_RATE, lambda i: write(i + 1000))
            missing = arrivals.wait_for(list(sent), 30)
    finally:
        tail.close()
    latencies = [arrivals.times[k] - t for k, t in sent.items() if k in arrivals.times]
    return {
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "count": len(latencies),
        "missing": missing,
    }


# -- the scenario -------------------------------------------------------------------------------


def run(bench: Bench, options: Options) -> list[Row]:
    repeats, seconds = options.size(quick=(1, 1.5), full=(3, 5.0))
    # 10 batches at least: with 4, the relay's wake-up and the last batch's mark (which no
    # read overlaps) and the 5 ms poll weighed as much as the steady state being measured.
    count = 500 if options.quick else 5_000
    engines = options.engines
    queues = {engine: bench.make_queue(engine, "relay") for engine in engines}
    relay_runs: dict[str, list[float]] = {e: [] for e in engines}
    peer_runs: dict[str, list[float]] = {e: [] for e in engines}

    with RelayProcess(bench.child_env()) as relay:
        for queue in queues.values():  # warm-up: each backend connects once
            drain_seconds(queue, 10, timeout=60)

        def measures(engine: str) -> list[Any]:
            def ours(_: int) -> None:
                relay_runs[engine].append(drain_seconds(queues[engine], count, timeout=300))

            def peer(_: int) -> None:
                peer_runs[engine].append(peer_seconds(queues[engine], count))

            return [ours, peer]

        interleave(repeats, *[m for engine in engines for m in measures(engine)])
        if relay.process.poll() is not None:
            raise BenchError("the relay died during the throughput runs")

    rows: list[Row] = []
    for engine in engines:
        rows.append(
            paired(
                f"{NAME}/{engine}",
                f"drain {count} rows",
                "msg/s",
                [count / s for s in relay_runs[engine]],
                "bare client loop",
                [count / s for s in peer_runs[engine]],
                TARGETS.get(engine),
            )
        )
    details: dict[str, Any] = {
        "rows": count,
        "batch": BATCH,
        "repeats": repeats,
        "relay_seconds": relay_runs,
        "peer_seconds": peer_runs,
    }

    if "kafka" in engines:
        queue = bench.make_queue("kafka", "latency")
        table = bench.linked_table(f"latency-{bench.run_id}", queue)
        notify: list[dict] = []
        polling: list[dict] = []
        bare: list[dict] = []
        interleave(
            repeats,
            lambda _: notify.append(relay_latency(bench, table, queue, seconds, polling=False)),
            lambda _: polling.append(relay_latency(bench, table, queue, seconds, polling=True)),
            lambda _: bare.append(client_latency(queue, seconds)),
        )
        for label, runs in (("LISTEN/NOTIFY", notify), ("polling 0.5 s", polling)):
            missing = sum(r["missing"] for r in runs)
            for pct in ("p50", "p99"):
                rows.append(
                    paired(
                        f"{NAME}/kafka",
                        f"commit→consumer {pct}, {label}, {WRITE_RATE:.0f} writes/s",
                        "ms",
                        [r[f"{pct}_ms"] for r in runs],
                        "kafka client produce→consumer",
                        [r[f"{pct}_ms"] for r in bare],
                        errors=missing,
                    )
                )
        details["latency"] = {
            "write_rate": WRITE_RATE,
            "seconds": seconds,
            "notify": notify,
            "polling": polling,
            "client": bare,
        }
    bench.details[NAME] = details
    return rows
