"""Scenario 5 — end to end: a record write's commit to its handler starting in a worker.

Through the real processes, one configuration at a time: writer processes
(``bench.e2e_writer``) create records through ``zstorage.records`` (outbox row in the write's
transaction, whose NOTIFY PostgreSQL delivers at commit) on one open-loop schedule of 100
writes per second, ``WRITERS`` of them taking turns (one process cannot make a write every
10 ms on a busy 2-core machine); ``manage.py relay`` publishes them; ``manage.py runworker
QUEUE --concurrency 10`` runs the ``bench-e2e`` handler (``bench.handlers``), whose first statement
takes ``time.time()`` and which sends ``(table, record_id, time)`` in a UDP datagram to this
process. latency = handler entered - commit returned (the writer takes ``time.time()`` in an
``on_commit`` callback registered before any of the write's own, so it runs first). Everything
runs on this machine, so both ends read one wall clock.

The measure's label says how many writes per second the writers held (fewer than 100 when the
machine's cores could not keep the schedule: the latency then includes that queueing). The
details split each write at its outbox row's ``published_at`` (commit → relay published →
handler) and give the CPU milliseconds per write of the writers, the relay and the worker.

Configurations:

1. the embedded default: SQLite (one file under ``var/bench/``, migrated by ``manage.py
   migrate``, shared by the writer, the relay and the worker) and the database queue. The
   relay runs as ``make run`` starts it (``platform/Procfile``: ``python manage.py relay``):
   SQLite has no LISTEN, so the relay and the worker's waiting fetch are woken by a datagram
   on a Unix socket sent when a write commits (``queues.dialects.sqlite``), with their polls
   (``--poll-seconds``, default 0.5 s; ``DatabaseBackend.poll_interval``, 0.2 s) as the
   fallback.
2. PostgreSQL + RabbitMQ — the issue's target: p99 < 50 ms at 100 writes/s.
3. PostgreSQL + Kafka, 4. PostgreSQL + database queue, 5. PostgreSQL + SQS (ElasticMQ).

``--engine`` picks the PostgreSQL configurations; the embedded one runs when ``database`` is
picked. Each measurement starts the three processes afresh, waits until they are ready, makes
50 warm-up writes at the full rate and waits until each reached the handler (connections, the
Kafka group join), then times ``RATE * seconds`` writes; the warm-up is discarded. A write
that never reaches the handler within ``DEADLINE_SECONDS`` fails the scenario.

Peer (``bench.e2e_peers``): per engine, its own client producing one message per write at the
same rate and a bare consumer of the same client, in this process; its clock starts just
before the produce call. The pair is one hop against our three (outbox, relay, worker).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import queue as queue_module
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bench.e2e_peers import (
    KafkaPeer,
    OnArrival,
    Peer,
    PostgresPeer,
    RabbitPeer,
    SqlitePeer,
    SqsPeer,
)
from bench.handlers import PORT_VARIABLE
from bench.harness import ROOT, Limit, Row, interleave, paired, percentile
from bench.options import BenchError, Options
from bench.processes import LOGS, RelayProcess, stop_process
from bench.scenarios.relay import paced
from bench.setup import Bench

NAME = "end-to-end"
TITLE = "End to end: record write → handler start, p50/p99 at 100 writes/s"

RATE = 100.0  # writes per second
WARMUP = 50  # writes at the full rate before the timed ones (0.5 s), discarded
CONCURRENCY = 10
#: Writer processes sharing the schedule: a write takes 10-25 ms on a busy 2-core machine.
WRITERS = 4
LEAD_SECONDS = 0.5
#: The issue's target: "End to end p99 under 50 ms on PostgreSQL + RabbitMQ at 100 writes/s".
TARGET = Limit(50, unit="ms")
TARGET_CONFIGURATION = "postgresql+rabbitmq"
#: How long after the last write every write must have reached the handler.
DEADLINE_SECONDS = 30.0
#: The warm-up's deadline also covers connecting and the Kafka consumer group's join.
WARMUP_DEADLINE_SECONDS = 90.0
START_SECONDS = 90.0

PEER_NAMES = {
    "sqlite": "sqlite3 INSERT→poll 0.2 s",
    "database": "psycopg INSERT+NOTIFY→LISTEN, SKIP LOCKED",
    "rabbitmq": "amqp publish+confirm→consumer",
    "kafka": "kafka produce+flush→consumer",
    "sqs": "boto3 send→long poll",
}


# -- arrivals -----------------------------------------------------------------------------------


class Landing:
    """First arrival time per write; ``wait_for`` waits on a condition, with a deadline."""

    def __init__(self) -> None:
        self.times: dict[int, float] = {}
        self.duplicates = 0
        self._condition = threading.Condition()

    def arrived(self, ident: int, at: float) -> None:
        with self._condition:
            if ident in self.times:
                self.duplicates += 1
            else:
                self.times[ident] = at
            self._condition.notify_all()

    def wait_for(
        self, idents: Sequence[int], timeout: float, alive: Callable[[], str | None] = lambda: None
    ) -> list[int]:
        """Wait until every ident arrived; return those missing at the deadline. ``alive``
        names a process that died (then waiting longer is pointless)."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while True:
                missing = [i for i in idents if i not in self.times]
                remaining = deadline - time.monotonic()
                if not missing or remaining <= 0:
                    return missing
                dead = alive()
                if dead:
                    raise BenchError(f"{dead} exited with {len(missing)} writes undelivered")
                self._condition.wait(min(remaining, 0.5))


class UdpListener:
    """Receives the ``bench-e2e`` handler's datagrams; keeps those of the table expected."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port = int(self.socket.getsockname()[1])
        self.table = ""
        self.landing = Landing()
        self.strays = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def expect(self, table: str) -> Landing:
        self.landing, self.table = Landing(), table
        return self.landing

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.socket.recv(512)
            except TimeoutError:
                continue
            try:
                table, ident, at = data.decode().split()
                if table != self.table:
                    raise ValueError(table)
                self.landing.arrived(int(ident), float(at))
            except ValueError:
                self.strays += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.socket.close()


# -- processes ----------------------------------------------------------------------------------


class Child:
    """A process under test: stderr to ``var/bench/<name>.log``, stdout read in a thread (the
    ``ready`` line sets an event, other lines are queued for ``answer``)."""

    def __init__(
        self, name: str, command: list[str], env: dict[str, str], ready: str, stdin: bool = False
    ) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = LOGS / f"{name}.log"
        self.log: IO[bytes] = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        self.ready_line = ready
        self._ready = threading.Event()
        self._lines: queue_module.SimpleQueue[str] = queue_module.SimpleQueue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if not self._ready.is_set() and self.ready_line in line:
                self._ready.set()
            else:
                self._lines.put(line)

    def dead(self) -> str | None:
        return None if self.process.poll() is None else f"{self.name} (see {self.log_path})"

    def wait_ready(self, timeout: float = START_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.1):
            if self.dead() or time.monotonic() > deadline:
                raise BenchError(f"{self.name} did not start; see {self.log_path}")

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def answer(self, timeout: float) -> str:
        """The next line it prints, waiting at most ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self._lines.get(timeout=0.5)
            except queue_module.Empty:
                if self.dead():
                    raise BenchError(f"{self.dead()} exited") from None
                if time.monotonic() > deadline:
                    raise BenchError(f"{self.name} did not answer in {timeout:.0f} s") from None

    def stop(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        stop_process(self.process)
        self.log.close()


# -- configurations -----------------------------------------------------------------------------


@dataclass
class Configuration:
    key: str  # "sqlite+database", "postgresql+rabbitmq", …
    engine: str
    queue_name: str
    table: str
    env: dict[str, str]
    make_peer: Callable[[OnArrival], Peer]
    peer_name: str
    #: record id -> when the relay marked its outbox row published (after the broker took it)
    published: Callable[[], dict[int, float]]
    ours: list[dict[str, Any]] = field(default_factory=list)
    peer: list[dict[str, Any]] = field(default_factory=list)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of processes (not their children), from /proc."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            text = Path(f"/proc/{pid}/stat").read_text()
            fields = text[text.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / os.sysconf("SC_CLK_TCK")


def _published_postgresql(queue_name: str) -> dict[int, float]:
    from queues.models import OutboxMessage, OutboxState

    rows = OutboxMessage.objects.filter(
        queue__name=queue_name, state=OutboxState.PUBLISHED
    ).values_list("body__record_id", "published_at")
    return {int(i): at.timestamp() for i, at in rows if at is not None}


def _published_sqlite(path: Path, queue_name: str) -> dict[int, float]:
    with contextlib.closing(sqlite3.connect(path, timeout=20)) as connection:
        rows = connection.execute(
            "SELECT json_extract(o.body, '$.record_id'), o.published_at "
            "FROM queues_outboxmessage o JOIN queues_queue q ON q.id = o.queue_id "
            "WHERE q.name = ? AND o.state = 'published'",
            (queue_name,),
        ).fetchall()
    return {
        int(i): dt.datetime.fromisoformat(at).replace(tzinfo=dt.UTC).timestamp()
        for i, at in rows
        if at is not None
    }


def _summary(latencies: list[float]) -> dict[str, Any]:
    return {
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": max(latencies) * 1000,
        "count": len(latencies),
    }


def _require(missing: list[int], what: str, timeout: float) -> None:
    if missing:
        raise BenchError(
            f"{what}: {len(missing)} writes never reached the handler within {timeout:.0f} s "
            f"(record ids {missing[:5]}…)"
        )


def write_at_rate(writers: list[Child], count: int) -> dict[str, Any]:
    """``count`` writes on one schedule of ``RATE`` per second, shared by the writers (each
    takes every n-th), starting in ``LEAD_SECONDS`` so every writer has its line by then."""
    start = time.time() + LEAD_SECONDS
    for index, writer in enumerate(writers):
        writer.send(f"{count} {RATE} {start!r} {index} {len(writers)}")
    answers = [json.loads(w.answer(LEAD_SECONDS + count / RATE + 60)) for w in writers]
    writes = [(int(i), float(t)) for a in answers for i, t in a["writes"]]
    durations = sorted(d for a in answers for d in a["durations"])
    return {
        "writes": writes,
        "max_late_ms": max(a["late"] for a in answers) * 1000,
        "write_ms_p50": percentile(durations, 50) * 1000,
        "write_ms_p99": percentile(durations, 99) * 1000,
        # The rate the writers held: below RATE when writes fell behind their schedule (the
        # machine's cores could not keep up).
        "held_rate": len(writes) / max(1e-9, max(t for _, t in writes) - start),
    }


def measure_ours(config: Configuration, listener: UdpListener, count: int) -> dict[str, Any]:
    """Start relay, worker and writers; warm up; time ``count`` writes at ``RATE``."""
    landing = listener.expect(config.table)
    worker_env = {
        **config.env,
        "QUAYMASTER_HANDLER_MODULES": "bench.handlers",
        PORT_VARIABLE: str(listener.port),
    }
    with contextlib.ExitStack() as stack:
        relay = RelayProcess(config.env, name=f"e2e-relay-{config.key}")
        stack.callback(relay.stop)
        worker = Child(
            f"e2e-worker-{config.key}",
            [
                sys.executable,
                "manage.py",
                "runworker",
                config.queue_name,
                "--concurrency",
                str(CONCURRENCY),
            ],
            worker_env,
            ready="worker: serving",
        )
        stack.callback(worker.stop)
        writers = []
        for index in range(WRITERS):
            writer = Child(
                f"e2e-writer-{config.key}-{index}",
                [sys.executable, "-m", "bench.e2e_writer", "write", "--table", config.table],
                config.env,
                ready="ready",
                stdin=True,
            )
            stack.callback(writer.stop)
            writers.append(writer)
        relay.wait_ready(START_SECONDS)
        worker.wait_ready()
        for writer in writers:
            writer.wait_ready()

        def alive() -> str | None:
            if relay.process.poll() is not None:
                return f"the relay (see {LOGS / relay.name}.log)"
            return worker.dead()

        processes = {
            "relay": [relay.pid],
            "worker": [worker.process.pid],
            "writers": [w.process.pid for w in writers],
        }
        warm = write_at_rate(writers, WARMUP)
        timeout = WARMUP_DEADLINE_SECONDS
        missing = landing.wait_for([i for i, _ in warm["writes"]], timeout, alive)
        _require(missing, f"{config.key} warm-up", timeout)
        cpu_before = {name: cpu_seconds(pids) for name, pids in processes.items()}
        run = write_at_rate(writers, count)
        writes: list[tuple[int, float]] = run.pop("writes")
        missing = landing.wait_for([i for i, _ in writes], DEADLINE_SECONDS, alive)
        _require(missing, config.key, DEADLINE_SECONDS)
        # CPU time each process spent on the timed writes, per write (all on this machine's
        # cores, shared with everything else running).
        cpu_ms = {
            name: (cpu_seconds(pids) - cpu_before[name]) * 1000 / count
            for name, pids in processes.items()
        }
    latencies = [landing.times[i] - t for i, t in writes]
    published = config.published()
    relayed = [published[i] - t for i, t in writes if i in published]
    delivered = [landing.times[i] - published[i] for i, _ in writes if i in published]
    return {
        **_summary(latencies),
        "duplicates": landing.duplicates,
        "load_average": os.getloadavg()[0],
        "writer": run,
        "cpu_ms_per_write": cpu_ms,
        # Where the time goes: commit -> outbox row marked published (the relay: wake-up,
        # claim, publish with the broker's confirmation, mark), then -> handler entered (the
        # broker's delivery and the worker's fetch and dispatch).
        "commit_to_published": _summary(relayed) if relayed else None,
        "published_to_handler": _summary(delivered) if delivered else None,
    }


def measure_peer(config: Configuration, count: int) -> dict[str, Any]:
    landing = Landing()
    sent: dict[int, float] = {}
    with config.make_peer(landing.arrived) as peer:

        def send(i: int) -> None:
            sent[i] = time.time()
            peer.send(i)

        paced(WARMUP, RATE, lambda i: send(i + 1))
        missing = landing.wait_for(list(sent), WARMUP_DEADLINE_SECONDS)
        _require(missing, f"{config.key} peer warm-up", WARMUP_DEADLINE_SECONDS)
        sent.clear()
        paced(count, RATE, lambda i: send(WARMUP + 1 + i))
        missing = landing.wait_for(list(sent), DEADLINE_SECONDS)
        _require(missing, f"{config.key} peer", DEADLINE_SECONDS)
    latencies = [landing.times[i] - t for i, t in sent.items()]
    return {
        **_summary(latencies),
        "duplicates": landing.duplicates,
        "load_average": os.getloadavg()[0],
    }


def _embedded(bench: Bench, stack: contextlib.ExitStack) -> Configuration:
    """The SQLite file, migrated and set up by subprocesses; deleted at the end."""
    path = LOGS / f"e2e-{bench.run_id}.sqlite3"
    queue_name = f"bench-{bench.run_id}-e2e-sqlite"
    LOGS.mkdir(parents=True, exist_ok=True)

    def remove() -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)

    stack.callback(remove)
    env = bench.child_env(DATABASE_URL=f"sqlite:///{path.resolve()}")
    for command in (
        [sys.executable, "manage.py", "migrate", "--no-input", "-v0"],
        [
            sys.executable,
            "-m",
            "bench.e2e_writer",
            "setup",
            "--table",
            "e2e-embedded",
            "--queue",
            queue_name,
        ],
    ):
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise BenchError(f"{' '.join(command[1:4])} failed on SQLite:\n{done.stderr[-3000:]}")
    return Configuration(
        key="sqlite+database",
        engine="database",
        queue_name=queue_name,
        table="e2e-embedded",
        env=env,
        make_peer=lambda on_arrival: SqlitePeer(str(path), on_arrival),
        peer_name=PEER_NAMES["sqlite"],
        published=lambda: _published_sqlite(path, queue_name),
    )


def _on_postgresql(bench: Bench, engine: str) -> Configuration:
    from bench.e2e_writer import linked_table

    queue = bench.make_queue(engine, "e2e")
    table = linked_table(f"e2e-{engine}-{bench.run_id}", queue)
    peer_queue = bench.make_queue(engine, "e2e-peer")
    makers: dict[str, Callable[[OnArrival], Peer]] = {
        "rabbitmq": lambda on_arrival: RabbitPeer(peer_queue.name, on_arrival),
        "kafka": lambda on_arrival: KafkaPeer(peer_queue.name, on_arrival),
        "sqs": lambda on_arrival: SqsPeer(peer_queue.name, on_arrival),
        "database": lambda on_arrival: PostgresPeer(bench.url, peer_queue.pk, on_arrival),
    }
    return Configuration(
        key=f"postgresql+{engine}",
        engine=engine,
        queue_name=queue.name,
        table=table.slug,
        env=bench.child_env(),
        make_peer=makers[engine],
        peer_name=PEER_NAMES[engine],
        published=lambda: _published_postgresql(queue.name),
    )


def polling_defaults() -> dict[str, float]:
    """The intervals a user gets from ``make run`` (the Procfile passes no options)."""
    from queues.backends.database import DatabaseBackend
    from queues.management.commands.relay import Command
    from workers.options import WorkerOptions

    parser = Command().create_parser("manage.py", "relay")
    return {
        "relay_poll_seconds": float(parser.get_default("poll_seconds")),
        "worker_poll_seconds": WorkerOptions().poll_seconds,
        "worker_busy_poll_seconds": WorkerOptions().busy_poll_seconds,
        "database_fetch_poll_interval": DatabaseBackend.poll_interval,
    }


# -- the scenario -------------------------------------------------------------------------------


def run(bench: Bench, options: Options) -> list[Row]:
    repeats, seconds = options.size(quick=(1, 1.5), full=(3, 10.0))
    count = max(1, int(seconds * RATE))
    defaults = polling_defaults()
    rows: list[Row] = []
    with contextlib.ExitStack() as stack:
        configs: list[Configuration] = []
        if "database" in options.engines:
            configs.append(_embedded(bench, stack))
        for engine in ("rabbitmq", "kafka", "database", "sqs"):
            if engine in options.engines:
                configs.append(_on_postgresql(bench, engine))
        listener = UdpListener()
        stack.callback(listener.close)

        def measures(config: Configuration) -> list[Callable[[int], None]]:
            def ours(_: int) -> None:
                config.ours.append(measure_ours(config, listener, count))

            def peer(_: int) -> None:
                config.peer.append(measure_peer(config, count))

            return [ours, peer]

        interleave(repeats, *[m for config in configs for m in measures(config)])

    for config in configs:
        note = ""
        if config.key.startswith("sqlite"):
            note = (
                "relay and worker woken through Unix sockets at commit (SQLite has no NOTIFY); "
                f"their polls ({defaults['relay_poll_seconds']:g} s, "
                f"{defaults['database_fetch_poll_interval']:g} s) are the fallback"
            )
        held = statistics.median(r["writer"]["held_rate"] for r in config.ours)
        for pct in ("p50", "p99"):
            rows.append(
                paired(
                    f"{NAME}/{config.key}",
                    f"write→handler {pct}, {RATE:.0f} writes/s ({held:.0f} held)",
                    "ms",
                    [r[f"{pct}_ms"] for r in config.ours],
                    config.peer_name,
                    [r[f"{pct}_ms"] for r in config.peer],
                    TARGET if (config.key, pct) == (TARGET_CONFIGURATION, "p99") else None,
                    note=note,
                )
            )
    bench.details[NAME] = {
        "rate": RATE,
        "writes": count,
        "warmup_writes": WARMUP,
        "repeats": repeats,
        "concurrency": CONCURRENCY,
        "defaults": defaults,
        "stray_datagrams": listener.strays,
        "configurations": {c.key: {"ours": c.ours, "peer": c.peer} for c in configs},
    }
    return rows
