"""The scale-out run: the platform's processes, several of each, under a steady write load,
with a relay and a worker killed (SIGKILL) and restarted mid-run.

What runs, each a real OS process started as ``platform/Procfile`` starts it, against this
test's PostgreSQL database and the real brokers:

* two ``web``: ``gunicorn quaymaster.wsgi --config platform/gunicorn.conf.py``, each on its
  own port (as on two machines behind a balancer); the load writes records through their
  Record API, alternating between them;
* two ``relay``: ``manage.py relay`` (PostgreSQL leases share the queues between them);
* four ``worker``: ``manage.py runworkers``, each with a ``runworker`` child per queue, so each
  queue has four consumers;
* one queue per engine — Kafka (4 partitions), RabbitMQ, SQS, database — all linked to one
  ZStorage table, so every record write is one event on each of the four queues.

The load is open loop (``rate`` writes per second for ``seconds``): the first ``records``
writes create records, every later one updates one of them (round robin), so each record gets
a run of versions. The handler (``tests.e2e.scale_out_handlers``) appends what it handled to a
file. Mid-run, one relay is killed while it holds a queue's lease (``kill -9``) and started
again, then one ``runworkers`` is killed with all its children (``kill -9`` of the process
group: a worker machine lost) and started again. The run then drains: it polls until every
write's event was handled on every queue, within ``drain_seconds``.

``Plan.from_env`` reads the knobs from ``SCALE_OUT_*`` variables (``make scale-out``), so the
short run of ``make test`` and the long one are the same code. ``run`` returns a ``Report``
(a dict, printed as JSON by the test) with what it measured; the assertions are the test's.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[2]
#: The worker processes' handler module, and its handler's name (not imported here: that
#: would register the handler in this process too).
HANDLERS_MODULE = "tests.e2e.scale_out_handlers"
HANDLER = "scale_out"
ENGINES = ("kafka", "rabbitmq", "sqs", "database")
RELAY_READY = "publishing the outbox"

T = TypeVar("T")
Report = dict[str, Any]


class ScaleOutError(AssertionError):
    """The run could not go on (a process did not start, a wait ran out)."""


def poll(probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05) -> T:
    """Call ``probe`` until it returns something truthy, and return that; raise after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise ScaleOutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)  # a pause between probes, not the synchronisation itself


# -- the plan ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """The run's knobs; each one is ``SCALE_OUT_<NAME>`` in the environment."""

    seconds: float = 24.0  # of steady load
    rate: float = 15.0  # record writes per second (each one event on each of the 4 queues)
    records: int = 30  # distinct records; writes past the first ``records`` update them
    writers: int = 8  # client threads (the load is open loop: a slow answer delays no write)
    web: int = 2  # gunicorn instances
    web_workers: int = 1  # gunicorn sync workers per instance
    relays: int = 2
    workers: int = 4  # ``runworkers`` processes, each with a child per queue
    concurrency: int = 1  # handlers per child (1: a Kafka partition is handled in order)
    work_ms: float = 20.0  # each handler call stands for this much work
    relay_kill_at: float = 0.25  # fraction of the writes done when the relay is killed
    worker_kill_at: float = 0.6  # ... when the worker is killed (after the relay's takeover)
    lease_seconds: float = 5.0  # ``relay --lease-seconds`` (production default 15)
    visibility_timeout: int = 5  # SQS and database queues (production default 30)
    kafka_partitions: int = 4
    kafka_session_ms: int = 6000  # librdkafka's default is 45,000; the broker's minimum 6,000
    boot_seconds: float = 120.0  # for every process to start and every consumer to join
    drain_seconds: float = 60.0  # after the load, for every event to be handled

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ, **overrides: Any) -> Plan:
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"SCALE_OUT_{f.name.upper()}")
            if raw:
                values[f.name] = type(getattr(cls, f.name))(float(raw))
        return cls(**{**values, **overrides})

    @property
    def writes(self) -> int:
        return max(self.records, math.ceil(self.seconds * self.rate))


# -- the processes ----------------------------------------------------------------------------


def children_of(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses.
        if int(text[text.rindex(")") + 2 :].split()[1]) == pid:
            found.append(int(text.split(" ", 1)[0]))
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Child:
    """A process in a session of its own (so ``kill`` can take its whole tree), its output in
    ``<logs>/<name>.log``."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.log_path = logs / f"{name}.log"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started = time.monotonic()
        self.killed_at: float | None = None
        self.port: int | None = None  # web: where it serves, /metrics included
        self.metrics_port: int | None = None
        self.metrics_dir = Path(env["PROMETHEUS_MULTIPROC_DIR"])

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> float:
        """SIGKILL to the process and everything it started; returns when (monotonic)."""
        self.killed_at = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(10)
        return self.killed_at

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class Fleet:
    """Starts the platform's processes with one environment; kills what is left at the end."""

    def __init__(self, plan: Plan, env: dict[str, str], logs: Path) -> None:
        self.plan = plan
        self.env = env
        self.logs = logs
        self.children: list[Child] = []

    def _start(
        self, name: str, command: list[str], metrics_port: int | None = None, **env: str
    ) -> Child:
        """Each process gets a Prometheus multiprocess directory of its own (gunicorn and
        ``runworkers`` merge their children's values from it; a killed process's counters stay
        in it) and, but for web, ``--metrics-port``."""
        metrics_dir = self.logs / "metrics" / name
        metrics_dir.mkdir(parents=True, exist_ok=True)
        if metrics_port is not None:
            command = [*command, "--metrics-port", str(metrics_port)]
        environment = {**self.env, **env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
        child = Child(name, command, environment, self.logs)
        child.metrics_port = metrics_port
        self.children.append(child)
        return child

    def scrape(self, child: Child) -> Samples:
        port = child.port if child.metrics_port is None else child.metrics_port
        assert port is not None
        return scrape(port)

    def web(self, name: str) -> Child:
        port = free_port()
        bind = f"127.0.0.1:{port}"
        command = [sys.executable, "-m", "gunicorn", "quaymaster.wsgi"]
        command += ["--config", "platform/gunicorn.conf.py"]
        child = self._start(
            name,
            command,
            QUAYMASTER_WEB_BIND=bind,
            WEB_CONCURRENCY=str(self.plan.web_workers),
        )
        child.port = port
        return child

    def relay(self, name: str) -> Child:
        command = [sys.executable, "manage.py", "relay"]
        command += ["--lease-seconds", str(self.plan.lease_seconds)]
        return self._start(name, command, free_port())

    def workers(self, name: str, instance: str | None = None) -> Child:
        """``runworkers`` named ``instance`` (its Kafka children's static member ids; a machine
        started again keeps its name)."""
        command = [sys.executable, "manage.py", "runworkers"]
        command += ["--instance-name", instance or name]
        command += ["--concurrency", str(self.plan.concurrency), "--drain-seconds", "5"]
        command += ["--refresh-seconds", "1", "--restart-delay", "0.5"]
        return self._start(name, command, free_port())

    def of_kind(self, prefix: str) -> list[Child]:
        return [c for c in self.children if c.name.startswith(prefix)]

    def unexpected_exits(self) -> list[str]:
        return [
            f"{c.name} (exit {c.process.returncode}):\n{c.log_tail()}"
            for c in self.children
            if c.killed_at is None and not c.alive()
        ]

    def cleanup(self) -> None:
        for child in self.children:
            if child.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
        for child in self.children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(10)


def relay_owner(child: Child) -> str:
    """The owner name a relay writes in the leases it holds (``queues.relay.Relay``)."""
    return f"{socket.gethostname()}:{child.pid}"


# -- what the run sets up ---------------------------------------------------------------------


@dataclass
class Setup:
    queues: dict[str, Any]  # engine -> Queue
    table: str  # the table's slug
    token: str

    @property
    def names(self) -> dict[str, str]:
        return {engine: queue.name for engine, queue in self.queues.items()}


def set_up(plan: Plan, tag: str) -> Setup:
    """The four queues (provisioned on their engines), the table linked to each, and an admin
    API token, in the current database."""
    from django.contrib.auth import get_user_model

    from accounts.models import ApiToken
    from bench.queues import orders_table, provision_queue
    from queues.models import QueueLink

    queues = {}
    for engine in ENGINES:
        options: dict[str, Any] = {"visibility_timeout": plan.visibility_timeout}
        if engine == "kafka":
            options["partitions"] = plan.kafka_partitions
        queues[engine] = provision_queue(f"so-{tag}-{engine}", engine, **options)
    table = orders_table(f"so-{tag}", None, handler=HANDLER)
    for queue in queues.values():
        QueueLink.objects.create(table=table, queue=queue, handler=HANDLER)
    user = get_user_model().objects.create_superuser(f"so-{tag}", f"so-{tag}@example.com", tag)
    _, raw = ApiToken.issue(user, "scale-out run")
    return Setup(queues, table.slug, raw)


def tear_down(setup: Setup) -> None:
    from bench.queues import delete_broker_queues

    delete_broker_queues(setup.queues.values())


# -- the load ---------------------------------------------------------------------------------


@dataclass
class Write:
    index: int
    web: int
    record: int | None = None
    version: int | None = None
    at: float = 0.0  # time.time() when the answer came
    status: int = 0
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status in (200, 201) and self.record is not None


class Writer:
    """``plan.writes`` record writes at ``plan.rate`` per second through the web processes'
    Record API, alternating between them; runs in a thread of its own."""

    def __init__(self, plan: Plan, setup: Setup, ports: list[int]) -> None:
        self.plan = plan
        self.setup = setup
        self.ports = ports
        self.done: list[Write] = []
        self._lock = threading.Lock()
        self._created: dict[int, Future[int | None]] = {}
        self._local = threading.local()
        self._thread = threading.Thread(target=self._run, name="scale-out-writer", daemon=True)
        self.started = 0.0
        self.finished = threading.Event()

    def start(self) -> Writer:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def progress(self) -> float:
        with self._lock:
            return len(self.done) / self.plan.writes

    def _run(self) -> None:
        plan = self.plan
        with ThreadPoolExecutor(plan.writers, thread_name_prefix="scale-out-write") as pool:
            for slot in range(plan.records):
                self._created[slot] = Future()
            for index in range(plan.writes):
                pause = self.started + index / plan.rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)  # the write schedule, not synchronisation
                pool.submit(self._write, index)
        self.finished.set()

    def _connection(self, port: int) -> http.client.HTTPConnection:
        connections = self._local.__dict__.setdefault("connections", {})
        if port not in connections:
            connections[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        return connections[port]

    def _request(self, port: int, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        connection = self._connection(port)
        headers = {
            "Authorization": f"Bearer {self.setup.token}",
            "Content-Type": "application/json",
        }
        try:
            connection.request(method, path, json.dumps(body), headers)
            answer = connection.getresponse()
            text = answer.read()
        except (OSError, http.client.HTTPException):
            connection.close()
            raise
        if answer.getheader("Connection", "").lower() == "close":
            connection.close()  # gunicorn's sync workers close after each answer
        return answer.status, json.loads(text) if text else None

    def _write(self, index: int) -> None:
        slot = index % self.plan.records
        web = index % len(self.ports)
        write = Write(index, web)
        base = f"/api/v1/zstorage/tables/{self.setup.table}/records/"
        creating = index < self.plan.records
        try:
            if creating:
                status, body = self._request(
                    self.ports[web],
                    "POST",
                    base,
                    {"number": f"SO-{slot}", "total": f"{index}.00", "status": "new"},
                )
            else:
                record = self._created[slot].result()
                if record is None:
                    raise ScaleOutError(f"record {slot} was never created")
                status, body = self._request(
                    self.ports[web], "PATCH", f"{base}{record}/", {"data": {"total": f"{index}.00"}}
                )
            write.status = status
            if status in (200, 201):
                write.record, write.version = int(body["id"]), int(body["version"])
            else:
                write.error = json.dumps(body)[:300]
        except Exception as exc:  # counted and reported: the run goes on
            write.error = repr(exc)[:300]
        write.at = time.time()
        if creating:
            self._created[slot].set_result(write.record)
        with self._lock:
            self.done.append(write)


# -- what the workers did ---------------------------------------------------------------------


def handled(record_file: Path) -> list[dict[str, Any]]:
    """The handler's lines, in the order the calls started."""
    if not record_file.exists():
        return []
    lines = record_file.read_text().splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]


def order_violations(versions: list[int]) -> list[str]:
    """Where a record's versions, as handled (or as logged), break its order: each version
    seen for the first time must be the one after the highest seen so far. A version seen
    again (a redelivery, a replay from a committed offset) is a duplicate, not a violation."""
    problems, highest, seen = [], 0, set()
    for position, version in enumerate(versions):
        if version in seen:
            continue
        if version != highest + 1:
            problems.append(f"v{version} at {position} after v{highest}")
        seen.add(version)
        highest = max(highest, version)
    return problems


def kafka_log(topic: str) -> list[tuple[int, int, dict[str, Any]]]:
    """Every record of ``topic`` read back with Kafka's own client: (partition, offset, body)
    in offset order per partition."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"],
            "group.id": f"scale-out-check-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        found: list[tuple[int, int, dict[str, Any]]] = []
        remaining = {p for p, end in ends.items() if end > 0}
        deadline = time.monotonic() + 30
        while remaining and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            partition, offset = message.partition() or 0, message.offset() or 0
            found.append((partition, offset, json.loads(message.value() or b"null")))
            if offset + 1 >= ends[partition]:
                remaining.discard(partition)
        if remaining:
            raise ScaleOutError(f"could not read {topic} to its end (partitions {remaining})")
        return sorted(found, key=lambda item: (item[0], item[1]))
    finally:
        consumer.close()


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round((len(ordered) - 1) * pct / 100))]


# -- the metrics ------------------------------------------------------------------------------

#: The counters the run adds up (``quaymaster.metrics``), by their samples' names.
COUNTERS = (
    "quaymaster_relay_published_total",
    "quaymaster_api_published_total",
    "quaymaster_worker_fetched_total",
    "quaymaster_worker_settled_total",
    "quaymaster_http_requests_total",
)
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse_counters(text: str) -> Samples:
    """The ``COUNTERS`` samples of a Prometheus text exposition, keyed by name and labels."""
    from prometheus_client.parser import text_string_to_metric_families

    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in COUNTERS:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                found[key] = found.get(key, 0.0) + sample.value
    return found


def scrape(port: int, timeout: float = 5) -> Samples:
    """``GET http://127.0.0.1:<port>/metrics``, parsed."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/metrics")
        answer = connection.getresponse()
        text = answer.read().decode()
    finally:
        connection.close()
    if answer.status != 200:
        raise ScaleOutError(f"/metrics on port {port} answered {answer.status}")
    return parse_counters(text)


def read_multiprocess_dir(path: Path) -> Samples:
    """The counters a process (and its children) left in its multiprocess directory: what a
    scrape would have shown, read after the process was killed."""
    from prometheus_client import CollectorRegistry, generate_latest, multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(path))
    return parse_counters(generate_latest(registry).decode())


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(
        value
        for (sample, sample_labels), value in samples.items()
        if sample == name and labels.items() <= dict(sample_labels).items()
    )


def merged(*parts: Samples) -> Samples:
    found: Samples = {}
    for part in parts:
        for key, value in part.items():
            found[key] = found.get(key, 0.0) + value
    return found


# -- waiting for the consumers ----------------------------------------------------------------


def live_workers(queue_ids: list[int], exclude: set[int]) -> Counter[int]:
    from workers.models import WorkerProcess

    rows = WorkerProcess.objects.filter(queue_id__in=queue_ids, stopped_at__isnull=True)
    return Counter(q for q, pid in rows.values_list("queue_id", "pid") if pid not in exclude)


def kafka_members(group: str) -> int | None:
    """Members of ``group`` holding partitions, once the group is stable (else None)."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"]})
    (future,) = admin.describe_consumer_groups([group]).values()
    described = future.result(timeout=10)
    if not str(described.state).endswith("STABLE"):
        return None
    return len([m for m in described.members if m.assignment.topic_partitions])


def rabbitmq_consumers(queue: Any) -> int:
    from queues.backends import get_backend

    with get_backend(queue) as backend:
        return int(backend.stats().consumers or 0)


# -- the run ----------------------------------------------------------------------------------


class Watch:
    """``probe`` polled in a thread of its own (with its own database connection) until it
    holds or ``timeout`` runs out, noting when it first held: a wait that must not hold up
    the run (the restarted worker boots while the load goes on)."""

    def __init__(self, probe: Callable[[], bool], timeout: float) -> None:
        self.seen_at: float | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(probe, timeout), daemon=True)
        self._thread.start()

    def _run(self, probe: Callable[[], bool], timeout: float) -> None:
        from django.db import connection

        try:
            poll(probe, timeout, "a watched condition", interval=0.2)
            self.seen_at = time.monotonic()
        except ScaleOutError:
            pass
        finally:
            connection.close()
            self._done.set()

    def wait(self) -> bool:
        """Whether it held, once the watch has ended."""
        self._done.wait()
        return self.seen_at is not None


@dataclass
class Timeline:
    """Monotonic seconds since the run started, of what happened."""

    origin: float = field(default_factory=time.monotonic)
    marks: dict[str, float] = field(default_factory=dict)

    def mark(self, name: str, at: float | None = None) -> float:
        at = time.monotonic() if at is None else at
        self.marks[name] = round(at - self.origin, 3)
        return at


def run(plan: Plan, setup: Setup, database_url: str, folder: Path) -> Report:
    """Start the fleet, load it, kill and restart a relay and a worker, drain; the report."""
    folder.mkdir(parents=True, exist_ok=True)
    record_file = folder / "handled.jsonl"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "QUAYMASTER_HANDLER_MODULES": HANDLERS_MODULE,
        "QM_SCALE_OUT_RECORD": str(record_file),
        "QM_SCALE_OUT_WORK_MS": str(plan.work_ms),
        "QUAYMASTER_KAFKA_SESSION_TIMEOUT_MS": str(plan.kafka_session_ms),
        "QUAYMASTER_API_RATE": "1000000/min",
        "PYTHONUNBUFFERED": "1",
    }
    fleet = Fleet(plan, env, folder)
    try:
        return _run(plan, setup, fleet, record_file)
    finally:
        fleet.cleanup()


def _run(plan: Plan, setup: Setup, fleet: Fleet, record_file: Path) -> Report:
    timeline = Timeline()
    queue_ids = [q.pk for q in setup.queues.values()]
    webs = [fleet.web(f"web-{i}") for i in range(plan.web)]
    relays = [fleet.relay(f"relay-{i}") for i in range(plan.relays)]
    supervisors = [fleet.workers(f"workers-{i}") for i in range(plan.workers)]
    _wait_booted(plan, setup, fleet, webs, relays, queue_ids)
    timeline.mark("booted")

    writer = Writer(plan, setup, [w.port for w in webs if w.port is not None]).start()
    timeline.mark("load started", writer.started)
    deadline = plan.seconds * 2 + 60

    # A relay: killed while it holds a queue's lease (if one is caught holding one within
    # 10 s; its last scrape is taken before, as a drain lasts milliseconds), then started again.
    poll(lambda: writer.progress() >= plan.relay_kill_at, deadline, "the load to reach the kill")
    scraped = {relay.name: _try_scrape(fleet, relay) for relay in relays}
    victim = _holding_a_lease(relays, within=10.0)
    owner = relay_owner(victim)
    relay_killed = timeline.mark("relay killed", victim.kill())
    relay_killed_wall = time.time()
    victims: dict[str, Any] = {"relay": {"before_kill": scraped[victim.name]}}
    victims["relay"]["final"] = read_multiprocess_dir(victim.metrics_dir)
    held = _leases_held(owner, within=0)  # what it held when it died: those wait for expiry
    fleet.relay("relay-restarted")
    relay_takeover = _lease_takeover(owner, held, plan.lease_seconds + 20)
    timeline.mark("relay leases taken over")

    # A worker machine: runworkers and its children, killed together, then started again.
    poll(lambda: writer.progress() >= plan.worker_kill_at, deadline, "the load to reach the kill")
    doomed = supervisors[0]
    doomed_pids = set(children_of(doomed.pid))
    victims["worker"] = {"before_kill": _try_scrape(fleet, doomed)}
    worker_killed = timeline.mark("worker killed", doomed.kill())
    killed_wall = time.time()
    victims["worker"]["final"] = read_multiprocess_dir(doomed.metrics_dir)
    replacement = fleet.workers("workers-restarted", instance=doomed.name)
    restarted = Watch(
        lambda: all(live_workers(queue_ids, doomed_pids)[q] >= plan.workers for q in queue_ids),
        plan.boot_seconds,
    )

    poll(writer.finished.is_set, deadline, "the load to end", interval=0.2)
    poll(lambda: writer.progress() >= 1, 60, "the last answers", interval=0.1)
    timeline.mark("load ended")
    if restarted.wait():
        timeline.mark("worker restarted", restarted.seen_at)

    writes = sorted(writer.done, key=lambda w: w.index)
    with open(record_file.with_name("writes.jsonl"), "w") as out:
        out.writelines(json.dumps(asdict(w)) + "\n" for w in writes)
    expected = {(w.record, w.version) for w in writes if w.ok}

    def drained() -> bool:
        lines = handled(record_file)
        seen: dict[str, set[tuple[int, int]]] = defaultdict(set)
        for line in lines:
            seen[line["queue"]].add((line["record"], line["version"]))
        return all(expected <= seen[name] for name in setup.names.values())

    try:
        poll(drained, plan.drain_seconds, "every event to be handled on every queue", 0.2)
        drain_complete = True
    except ScaleOutError:
        drain_complete = False
    timeline.mark("drained")

    report = _report(plan, setup, writes, handled(record_file), timeline)
    report["database_connections"] = _database_connections()
    report["drain_complete"] = drain_complete
    report["relay_kill"] = {
        "relay": victim.name,
        "killed_at": round(relay_killed - timeline.origin, 3),
        "leases_held": held,
        "takeover_seconds": relay_takeover,
        "latency_after_kill_ms": _latency_after(
            setup,
            writes,
            handled(record_file),
            relay_killed_wall,
            min(killed_wall, relay_killed_wall + plan.lease_seconds),
        ),
    }
    report["worker_kill"] = _worker_takeover(
        setup, handled(record_file), doomed_pids, killed_wall, worker_killed, timeline
    )
    report["worker_kill"]["restarted_after_seconds"] = (
        round(restarted.seen_at - worker_killed, 2) if restarted.seen_at is not None else None
    )
    report["worker_kill"]["latency_after_kill_ms"] = _latency_after(
        setup, writes, handled(record_file), killed_wall, killed_wall + 15
    )
    report["replacement_pid"] = replacement.pid
    report["unexpected_exits"] = fleet.unexpected_exits()
    report["live_workers"] = {
        name: live_workers([setup.queues[engine].pk], doomed_pids)[setup.queues[engine].pk]
        for engine, name in setup.names.items()
    }
    report["kafka_log_order"] = _kafka_log_order(setup.names["kafka"])
    timeline.mark("Kafka log read")
    report["metrics"] = _metrics(
        fleet, setup, report["writes"]["ok"], victims, lost_acks=plan.concurrency
    )
    timeline.mark("counters settled")
    report["timeline"] = timeline.marks
    report["wall_seconds"] = round(time.monotonic() - timeline.origin, 1)
    return report


def _database_connections() -> int:
    """Connections to this database now (the fleet's, and this process's own)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        (count,) = cursor.fetchone()
    return int(count)


def _try_scrape(fleet: Fleet, child: Child) -> Samples | str:
    try:
        return fleet.scrape(child)
    except (OSError, http.client.HTTPException, ScaleOutError) as exc:
        return repr(exc)


def _metrics(
    fleet: Fleet, setup: Setup, events: int, victims: dict[str, Any], lost_acks: int
) -> Report:
    """The counters summed over every process: the live ones scraped at the end, the killed
    ones read from the multiprocess directories they left (and, for comparison, what a
    scrape just before the kill showed). Polled until two scrapes agree and each queue's acks
    are within ``lost_acks`` of ``events`` (an ack may come a moment after the handler's
    line), within 20 s.

    A counter is incremented after the engine or the database did the work, so a process
    killed in between did the work uncounted: the killed relay may have marked its last
    batch without counting it, a killed worker acked what it was settling (``concurrency``
    per child at most). Hence bounds, not equalities, in the test."""
    survivors = [c for c in fleet.children if c.killed_at is None]
    killed = [v["final"] for v in victims.values()]

    def summed() -> Samples:
        return merged(*[fleet.scrape(c) for c in survivors], *killed)

    scrapes: list[Samples] = []

    def settled() -> Samples | None:
        scrapes.append(summed())
        if len(scrapes) < 2 or _queue_counters(scrapes[-1]) != _queue_counters(scrapes[-2]):
            return None
        samples = scrapes[-1]
        for name in setup.names.values():
            acked = total(samples, "quaymaster_worker_settled_total", queue=name, outcome="acked")
            if acked < events - lost_acks:
                return None
        return samples

    try:
        samples = poll(settled, 20, "the counters to settle", interval=0.5)
    except ScaleOutError:
        samples = scrapes[-1]
    queues: dict[str, Any] = {}
    for engine, name in setup.names.items():
        queues[engine] = {
            "relay_published": total(samples, "quaymaster_relay_published_total", queue=name),
            "api_published": total(samples, "quaymaster_api_published_total", queue=name),
            "fetched": total(samples, "quaymaster_worker_fetched_total", queue=name),
            **{
                outcome: total(
                    samples, "quaymaster_worker_settled_total", queue=name, outcome=outcome
                )
                for outcome in ("acked", "retried", "dead_lettered", "not_acked", "released")
            },
            "killed_relay_before_kill": _total_or(
                victims["relay"]["before_kill"], "quaymaster_relay_published_total", name
            ),
            "killed_relay_final": _total_or(
                victims["relay"]["final"], "quaymaster_relay_published_total", name
            ),
            "killed_worker_acked_before_kill": _total_or(
                victims["worker"]["before_kill"], "quaymaster_worker_settled_total", name
            ),
            "killed_worker_acked_final": _total_or(
                victims["worker"]["final"], "quaymaster_worker_settled_total", name
            ),
        }
    writes = sum(
        total(samples, "quaymaster_http_requests_total", method=method, status=status)
        for method in ("POST", "PATCH")
        for status in ("200", "201")
    )
    return {"events_per_queue": events, "queues": queues, "web_writes_answered": writes}


def _queue_counters(samples: Samples) -> Samples:
    """All but the web's request counts (each scrape of /metrics is a request)."""
    return {k: v for k, v in samples.items() if k[0] != "quaymaster_http_requests_total"}


def _total_or(samples: Samples | str, name: str, queue: str) -> float | str:
    """A victim's counter, or why it could not be scraped."""
    if isinstance(samples, str):
        return samples
    if name == "quaymaster_worker_settled_total":
        return total(samples, name, queue=queue, outcome="acked")
    return total(samples, name, queue=queue)


def _wait_booted(
    plan: Plan,
    setup: Setup,
    fleet: Fleet,
    webs: list[Child],
    relays: list[Child],
    queue_ids: list[int],
) -> None:
    def alive() -> None:
        exited = fleet.unexpected_exits()
        if exited:
            raise ScaleOutError("a process exited while starting:\n" + "\n".join(exited))

    def web_ready(child: Child) -> bool:
        alive()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", child.port or 0, timeout=5)
            connection.request("GET", "/healthz")
            return connection.getresponse().status == 200
        except OSError:
            return False

    def relay_ready(child: Child) -> bool:
        alive()
        return RELAY_READY in child.log_tail(100_000)

    for web in webs:
        poll(partial(web_ready, web), plan.boot_seconds, f"{web.name} to answer", 0.1)
    for relay in relays:
        poll(partial(relay_ready, relay), plan.boot_seconds, f"{relay.name} to start", 0.1)

    def workers_ready() -> bool:
        alive()
        live = live_workers(queue_ids, set())
        return all(live[q] >= plan.workers for q in queue_ids)

    poll(workers_ready, plan.boot_seconds, "every worker child to register", 0.2)
    kafka = setup.queues["kafka"]
    poll(
        lambda: (
            kafka_members(f"quaymaster.{kafka.name}") == min(plan.workers, plan.kafka_partitions)
        ),
        plan.boot_seconds,
        "the Kafka consumers to share the partitions",
        0.2,
    )
    rabbit = setup.queues["rabbitmq"]
    poll(lambda: rabbitmq_consumers(rabbit) >= plan.workers, 30, "the RabbitMQ consumers", 0.2)


def _holding_a_lease(relays: list[Child], within: float) -> Child:
    """A relay that holds a queue's lease, stopped (SIGSTOP) so that it keeps holding it until
    it is killed; the first relay, stopped, if none was caught within ``within`` seconds.

    A relay holds a lease only while it drains the queue, milliseconds at this load: one seen
    holding a lease may have let it go before a signal reaches it, so it is stopped first and
    looked at again, and let go on (SIGCONT) if it no longer holds one."""
    from django.utils import timezone

    from queues.models import RelayLease

    owners = {relay_owner(relay): relay for relay in relays}

    def holder() -> Child | None:
        leases = RelayLease.objects.filter(owner__in=owners, expires_at__gt=timezone.now())
        owner = leases.values_list("owner", flat=True).first()
        return owners[owner] if owner else None

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            candidate = poll(holder, deadline - time.monotonic(), "a lease", interval=0.005)
        except ScaleOutError:
            break
        os.killpg(candidate.pid, signal.SIGSTOP)
        if _leases_held(relay_owner(candidate), within=0):
            return candidate
        os.killpg(candidate.pid, signal.SIGCONT)
    os.killpg(relays[0].pid, signal.SIGSTOP)
    return relays[0]


def _leases_held(owner: str, within: float) -> list[str]:
    """The queues whose lease ``owner`` holds (polled for up to ``within`` seconds until it
    holds one)."""
    from django.utils import timezone

    from queues.models import RelayLease

    def probe() -> list[str]:
        leases = RelayLease.objects.filter(owner=owner, expires_at__gt=timezone.now())
        return list(leases.values_list("queue__name", flat=True))

    try:
        return poll(probe, within, "the relay to hold a lease", interval=0.005)
    except ScaleOutError:
        return []


def _lease_takeover(owner: str, queues: list[str], timeout: float) -> float | None:
    """Seconds from now until none of ``queues``' leases is ``owner``'s any more."""
    from queues.models import RelayLease

    if not queues:
        return None
    began = time.monotonic()

    def taken() -> bool:
        return not RelayLease.objects.filter(owner=owner, queue__name__in=queues).exists()

    poll(taken, timeout, "another relay to take the killed relay's leases", interval=0.05)
    return round(time.monotonic() - began, 2)


def _report(
    plan: Plan,
    setup: Setup,
    writes: list[Write],
    lines: list[dict[str, Any]],
    timeline: Timeline,
) -> Report:
    ok = [w for w in writes if w.ok]
    written_at = {(w.record, w.version): w.at for w in ok}
    expected = set(written_at)
    queues: dict[str, Any] = {}
    for engine, name in setup.names.items():
        mine = [line for line in lines if line["queue"] == name]
        first: dict[tuple[int, int], float] = {}
        ids_of: dict[tuple[int, int], set[str]] = defaultdict(set)
        for line in mine:
            key = (line["record"], line["version"])
            first.setdefault(key, line["at"])
            ids_of[key].add(line["id"])
        latencies = [first[k] - written_at[k] for k in expected if k in first]
        queues[engine] = {
            "queue": name,
            "handled": len(mine),
            "events": len(first),
            "missing": sorted(expected - set(first))[:20],
            "missing_count": len(expected - set(first)),
            "unexpected": sorted(set(first) - expected)[:20],
            "duplicates": len(mine) - len({line["id"] for line in mine}),
            "ids_per_event": max((len(ids) for ids in ids_of.values()), default=0),
            "per_process": sorted(Counter(line["pid"] for line in mine).values(), reverse=True),
            "latency_ms": {
                "p50": round(percentile(latencies, 50) * 1000, 1),
                "p99": round(percentile(latencies, 99) * 1000, 1),
                "max": round(max(latencies, default=math.nan) * 1000, 1),
            },
        }
    kafka = setup.names["kafka"]
    sequences: dict[int, list[int]] = defaultdict(list)
    for line in lines:
        if line["queue"] == kafka:
            sequences[line["record"]].append(line["version"])
    queues["kafka"]["handled_order_violations"] = {
        record: problems
        for record, versions in sequences.items()
        if (problems := order_violations(versions))
    }
    load = [w.at for w in ok]
    return {
        "plan": asdict(plan),
        "writes": {
            "sent": len(writes),
            "ok": len(ok),
            "errors": [f"{w.index}: {w.status} {w.error}" for w in writes if not w.ok][:20],
            "error_count": len(writes) - len(ok),
            "rate_achieved": round(len(ok) / (max(load) - min(load)), 1) if len(load) > 1 else 0,
            "messages_expected": len(ok) * len(ENGINES),
        },
        "queues": queues,
    }


def _latency_after(
    setup: Setup, writes: list[Write], lines: list[dict[str, Any]], since: float, until: float
) -> dict[str, float]:
    """Per queue, the longest wait from a write's answer to its event's first handling, of
    the writes answered from ``since`` (a kill) to ``until`` (wall clock): how long the
    queue's takeover held events back."""
    result = {}
    for engine, name in setup.names.items():
        first: dict[tuple[int, int], float] = {}
        for line in lines:
            if line["queue"] == name:
                first.setdefault((line["record"], line["version"]), line["at"])
        waits = [
            first[key] - w.at
            for w in writes
            if w.ok and since <= w.at < until and (key := (w.record or 0, w.version or 0)) in first
        ]
        result[engine] = round(max(waits, default=math.nan) * 1000, 1)
    return result


def _worker_takeover(
    setup: Setup,
    lines: list[dict[str, Any]],
    doomed: set[int],
    killed_wall: float,
    killed_at: float,
    timeline: Timeline,
) -> Report:
    """What the kill of a worker machine cost each queue: the messages its children had
    started and that others handled again (and when), and the longest a write made around the
    kill waited for its first handling."""
    result: dict[str, Any] = {"killed_at": round(killed_at - timeline.origin, 3)}
    for engine, name in setup.names.items():
        mine = [line for line in lines if line["queue"] == name]
        by_doomed = {line["id"] for line in mine if line["pid"] in doomed}
        again = [
            line["at"] - killed_wall
            for line in mine
            if line["id"] in by_doomed and line["pid"] not in doomed and line["at"] > killed_wall
        ]
        last_before = max((line["at"] for line in mine if line["at"] <= killed_wall), default=0)
        after = sorted(line["at"] for line in mine if line["at"] > killed_wall)
        gaps = [b - a for a, b in zip([last_before, *after], after, strict=False)]
        result[engine] = {
            "handled_by_killed_children": len(by_doomed),
            "handled_again_elsewhere": len(again),
            "redelivered_after_seconds": round(max(again), 2) if again else None,
            "longest_pause_after_kill_seconds": round(max(gaps), 2) if gaps else None,
        }
    return result


def _kafka_log_order(topic: str) -> Report:
    """The topic as the relays wrote it: each record's versions in offset order."""
    sequences: dict[int, list[int]] = defaultdict(list)
    partitions: dict[int, set[int]] = defaultdict(set)
    log = kafka_log(topic)
    for partition, _, body in log:
        sequences[body["record_id"]].append(body["version"])
        partitions[body["record_id"]].add(partition)
    return {
        "records_in_log": len(log),
        "duplicates_in_log": len(log) - len({body["message_id"] for _, _, body in log}),
        "violations": {
            record: problems
            for record, versions in sequences.items()
            if (problems := order_violations(versions))
        },
        "records_on_two_partitions": sorted(r for r, ps in partitions.items() if len(ps) > 1),
    }


@contextlib.contextmanager
def scale_out_run(plan: Plan, database_url: str, folder: Path) -> Iterator[Report]:
    """Set up, run and tear down (the broker queues are deleted afterwards)."""
    setup = set_up(plan, uuid.uuid4().hex[:8])
    try:
        yield run(plan, setup, database_url, folder)
    finally:
        tear_down(setup)
