"""Scenario — failover: how long a SIGKILLed relay's queue and Kafka worker's partitions wait.

Relay, per engine: two ``manage.py relay`` (``--batch-size 50``) share a queue; 10,000 outbox
rows are committed; once 5% are published, the relay holding the queue (its ``RelayLease``
owner) gets SIGKILL. takeover = the first ``published_at`` after the kill (rows only the other
relay can mark) minus the time of the kill. Ours: the PostgreSQL session lock (the lease ends
with the dead relay's session). Peer: the same relays with ``--no-session-locks`` (the lease's
15 s expiry, the mechanism before), measured in the same run.

Kafka worker: a producer in the bench sends 200 messages/s over 4 partitions; two
``manage.py runworker --concurrency 10`` consume them with a handler that reports (pid,
partition, time) over UDP (``bench/failover_handlers.py``). Once both consume, one gets SIGKILL,
and is started again at once (what ``runworkers`` does) or not. takeover = until every partition
the victim held is handled again; pause = the longest gap of any partition from the kill on (a
rebalance that stops the whole group shows here). Ours: the defaults (session 10 s) with static
members (``--group-instance-id``, as ``runworkers`` gives); peer: dynamic members with
librdkafka's default 45 s session (before). Each run has its own queue, so its group starts
empty. ``--quick``: 2,000 rows, one repeat, the peers at a 2 s lease and a 6 s session.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

from bench.harness import ROOT, Limit, Row, interleave, paired
from bench.options import BenchError, Options
from bench.processes import LOGS, RelayProcess, stop_process
from bench.scenarios.relay import fill
from bench.setup import Bench

NAME = "failover"
TITLE = "Failover: takeover after SIGKILL of a relay (per engine) and of a Kafka worker"

PARTITIONS = 4
RATE = 200.0  # messages per second produced for the worker runs
WORKER_TARGET = Limit(10.0, unit="s")  # restarted: back before the session ends
WORKER_GONE_TARGET = Limit(15.0, unit="s")  # not restarted: the 10 s session, then a rebalance


# -- relay --------------------------------------------------------------------------------------


def relay_takeover(bench: Bench, queue: Any, rows: int, *, locks: bool, lease: float) -> float:
    """Seconds from the SIGKILL of the relay holding ``queue`` to the other's first mark."""
    from queues.backends import get_backend
    from queues.models import OutboxMessage, OutboxState, RelayLease

    mechanism = "locks" if locks else "expiry"
    args = ["--batch-size", "50", "--lease-seconds", str(lease), "--poll-seconds", "0.5"]
    if not locks:
        args.append("--no-session-locks")
    relays = [
        RelayProcess(bench.child_env(), *args, name=f"failover-relay-{mechanism}-{i}")
        for i in range(2)
    ]
    try:
        for relay in relays:
            relay.wait_ready()
        fill(queue, rows)
        published = OutboxMessage.objects.filter(queue=queue, state=OutboxState.PUBLISHED)
        deadline = time.monotonic() + 120
        victim = None
        while victim is None:
            if time.monotonic() > deadline:
                raise BenchError(f"no relay held {queue.name} while publishing")
            owner = RelayLease.objects.filter(queue=queue).values_list("owner", flat=True).first()
            if owner and published.count() >= rows * 0.05:
                pid = int(owner.rsplit(":", 1)[1])
                victim = next((r for r in relays if r.pid == pid), None)
            time.sleep(0.005)
        killed = time.time()
        os.kill(victim.pid, signal.SIGKILL)
        victim.process.wait(timeout=10)
        after = published.filter(published_at__gt=dt.datetime.fromtimestamp(killed, dt.UTC))
        deadline = time.monotonic() + lease + 60
        while not after.exists():
            if time.monotonic() > deadline:
                raise BenchError(f"no relay took {queue.name} over ({mechanism})")
            time.sleep(0.01)
        first = min(at for at in after.values_list("published_at", flat=True) if at is not None)
        return first.timestamp() - killed
    finally:
        for relay in relays:
            relay.stop()
        OutboxMessage.objects.filter(queue=queue).delete()
        with contextlib.suppress(Exception), get_backend(queue) as backend:
            backend.purge()


# -- Kafka workers ------------------------------------------------------------------------------


class Handled:
    """(pid, partition, seq, time) reported by the workers' handler over UDP."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.seen: list[tuple[int, int, int, float]] = []
        self.closed = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while not self.closed.is_set():
            try:
                data = self.sock.recv(512)
            except TimeoutError:
                continue
            except OSError:
                return
            pid, partition, seq, at = data.decode().split()
            self.seen.append((int(pid), int(partition), int(seq), float(at)))

    def since(self, at: float) -> list[tuple[int, int, int, float]]:
        return [r for r in list(self.seen) if r[3] > at]

    def close(self) -> None:
        self.closed.set()
        self.sock.close()


class Producing:
    """``RATE`` messages per second to the topic, round robin over its partitions."""

    def __init__(self, topic: str) -> None:
        from confluent_kafka import Producer

        self.topic = topic
        self.producer = Producer(
            {"bootstrap.servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"], "linger.ms": 2}
        )
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        started = time.perf_counter()
        seq = 0
        while not self.stopping.is_set():
            due = started + seq / RATE
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            partition = seq % PARTITIONS
            body = {"handler": "bench-failover", "p": partition, "seq": seq}
            self.producer.produce(
                self.topic,
                json.dumps(body).encode(),
                partition=partition,
                headers=[("quaymaster-message-id", str(uuid.uuid4()))],
            )
            self.producer.poll(0)
            seq += 1

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)
        self.producer.flush(10)


def _worker(bench: Bench, queue: Any, env: dict[str, str], name: str, member: str | None) -> Any:
    command = [sys.executable, "manage.py", "runworker", queue.name, "--concurrency", "10"]
    command += ["--handlers-module", "bench.failover_handlers"]
    if member:
        command += ["--group-instance-id", member]
    LOGS.mkdir(parents=True, exist_ok=True)
    with open(LOGS / f"{name}.log", "ab") as log:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def worker_takeover(
    bench: Bench, *, static: bool, session_ms: int | None, restart: bool, label: str
) -> dict[str, float]:
    """One run on a fresh queue: {"takeover": s, "pause": s}."""
    from bench.failover_handlers import PORT_VARIABLE

    queue = bench.make_queue("kafka", f"failover-{label}", partitions=PARTITIONS)
    handled = Handled()
    extra = {PORT_VARIABLE: str(handled.port)}
    if session_ms is not None:
        extra["QUAYMASTER_KAFKA_SESSION_TIMEOUT_MS"] = str(session_ms)
    env = bench.child_env(**extra)
    members = [f"bench-{bench.run_id}-{label}-{i}" if static else None for i in range(2)]
    workers = [_worker(bench, queue, env, f"failover-{label}-{i}", members[i]) for i in range(2)]
    producing = Producing(queue.name)
    try:
        deadline = time.monotonic() + 120
        victim_pid = workers[0].pid
        while True:  # both consume, and every partition is handled
            recent = handled.since(time.time() - 1.0)
            pids = {r[0] for r in recent}
            if pids >= {w.pid for w in workers} and len({r[1] for r in recent}) == PARTITIONS:
                break
            if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
                raise BenchError(f"the workers of {label} did not both consume; see {LOGS}")
            time.sleep(0.1)
        time.sleep(1.0)  # a settled group
        last: dict[int, int] = {}
        for pid, partition, _, _ in sorted(handled.seen, key=lambda r: r[3]):
            last[partition] = pid
        held = {p for p, pid in last.items() if pid == victim_pid}
        killed = time.time()
        os.kill(victim_pid, signal.SIGKILL)
        workers[0].wait(timeout=10)
        if restart:
            workers.append(_worker(bench, queue, env, f"failover-{label}-again", members[0]))
        deadline = time.monotonic() + (session_ms or 45_000) / 1000 + 90
        while True:
            resumed = {r[1]: r[3] for r in reversed(handled.since(killed))}
            if held <= set(resumed):
                break
            if time.monotonic() > deadline:
                raise BenchError(f"{label}: partitions {sorted(held - set(resumed))} not resumed")
            time.sleep(0.05)
        takeover = max(resumed[p] - killed for p in held)
        time.sleep(1.0)
        pause = 0.0
        for partition in range(PARTITIONS):
            times = [killed, *sorted(r[3] for r in handled.since(killed) if r[1] == partition)]
            pause = max([pause, *(b - a for a, b in itertools.pairwise(times))])
        return {"takeover": takeover, "pause": pause, "partitions_held": len(held)}
    finally:
        producing.stop()
        for worker in workers:
            with contextlib.suppress(Exception):
                stop_process(worker, timeout=20)
        handled.close()


# -- the scenario -------------------------------------------------------------------------------


def run(bench: Bench, options: Options) -> list[Row]:
    repeats, _ = options.size(quick=(1, 1.0), full=(2, 1.0))
    rows_count = 2_000 if options.quick else 10_000
    peer_lease = 2.0 if options.quick else 15.0
    peer_session = 6_000 if options.quick else 45_000
    rows: list[Row] = []
    details: dict[str, Any] = {"repeats": repeats, "rows": rows_count, "peer_lease": peer_lease}

    for engine in options.engines:
        queue = bench.make_queue(engine, "failover-relay")
        ours: list[float] = []
        peer: list[float] = []

        def measure_relay(queue: Any, runs: list[float], locks: bool) -> Any:
            return lambda _: runs.append(
                relay_takeover(bench, queue, rows_count, locks=locks, lease=peer_lease)
            )

        interleave(repeats, measure_relay(queue, ours, True), measure_relay(queue, peer, False))
        rows.append(
            paired(
                f"{NAME}/{engine}",
                "relay SIGKILLed holding the queue → other relay's first publish",
                "s",
                ours,
                f"lease expiry ({peer_lease:g} s)",
                peer,
                Limit(2.0, unit="s"),
            )
        )
        details[f"relay_{engine}"] = {"session_lock": ours, "expiry": peer}

    if "kafka" in options.engines:
        runs: dict[str, list[dict[str, float]]] = {}
        cases: dict[str, dict[str, Any]] = {
            "static-restart": {"static": True, "session_ms": None, "restart": True},
            "dynamic-restart": {"static": False, "session_ms": peer_session, "restart": True},
            "static-gone": {"static": True, "session_ms": None, "restart": False},
            "dynamic-gone": {"static": False, "session_ms": peer_session, "restart": False},
        }

        def measure(label: str, case: dict[str, Any]) -> Any:
            return lambda n: runs.setdefault(label, []).append(
                worker_takeover(bench, label=f"{label}-{n}", **case)
            )

        interleave(repeats, *[measure(label, case) for label, case in cases.items()])
        peer_name = f"dynamic member, {peer_session // 1000} s session"
        for measure_name, key, ours_case, peer_case in (
            ("worker SIGKILLed, restarted at once → its partitions handled again", "takeover",
             "static-restart", "dynamic-restart"),
            ("worker SIGKILLed, restarted at once → longest pause of any partition", "pause",
             "static-restart", "dynamic-restart"),
            ("worker SIGKILLed, not restarted → its partitions handled by the other", "takeover",
             "static-gone", "dynamic-gone"),
        ):  # fmt: skip
            rows.append(
                paired(
                    f"{NAME}/kafka",
                    measure_name,
                    "s",
                    [r[key] for r in runs[ours_case]],
                    peer_name,
                    [r[key] for r in runs[peer_case]],
                    (WORKER_GONE_TARGET if "not restarted" in measure_name else WORKER_TARGET)
                    if key == "takeover"
                    else None,
                    note="ours: static members, 10 s session",
                )
            )
        details["kafka_workers"] = runs
    bench.details[NAME] = details
    return rows
