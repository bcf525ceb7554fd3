"""Scenario — jobs: fan-out throughput against a Celery chord, the cost of starting a big run,
and the latency of the completion event.

1. **Fan-out throughput**, per engine (RabbitMQ and the database queue, both on PostgreSQL):
   ``jobs.start`` of ``FANOUT`` instances of the no-op job ``bench.noop`` (``bench/jobs.py``)
   at parallelism ``PARALLELISM``, with ``on_complete`` a queue on the same engine, while one
   ``manage.py runworker QUEUE --concurrency 10`` and one ``manage.py relay`` (defaults:
   LISTEN/NOTIFY, batches of 500) serve it. The clock runs from the call to ``jobs.start``
   (which writes the run, its instances and the first wave's outbox rows) until the run's
   ``job.completed`` message has been published by the relay: every instance's state row,
   result, counters, the release of the next instance (through the outbox), the run's final
   state and its completion event are inside. The processes start afresh for each
   measurement, and a warm-up run of ``WARMUP`` instances goes first (connections, imports).

   Peer: a Celery ``chord`` — a group of ``FANOUT`` no-op tasks plus a callback — on the same
   RabbitMQ, its results in Celery's database result backend (SQLAlchemy) on the same
   PostgreSQL server (the bench database; Celery's RPC backend cannot run chords), served by
   one Celery worker (``bench/celery_chord_peer.py``) at concurrency 10 with ``acks_late``.
   The pool is prefork, Celery's default: with ``--pool threads`` the database backend opens a
   new PostgreSQL connection for every result (SQLAlchemy ``NullPool`` outside a forked child),
   which made it ~65 tasks/s here, a peer not worth beating. The clock runs from the call that
   applies the chord (publishing its 10,000 tasks) until the callback runs (it sends its time
   over UDP). Without native chord support Celery polls the group with ``celery.chord_unlock``
   every second, reading each result: that is part of what a chord costs on this backend.
   Target: at least 1x the chord's instances per second.

2. **Start cost**: seconds for ``jobs.runs.start`` of ``START_COUNT`` instances (in this
   process, on PostgreSQL, onto a database queue nobody serves) to return. Target: under 5 s.
   Peers: ``JobInstance.objects.bulk_create`` of the same rows into the same table in one
   transaction (batches of 5,000, as ``start`` writes them), and PostgreSQL ``COPY`` of the
   same rows: what the bookkeeping adds over the bare write. The table is emptied and
   vacuumed after each measurement.

3. **Completion latency** on PostgreSQL + RabbitMQ: ``LATENCY_RUNS`` runs of ``LATENCY_SIZE``
   instances, one after another, on a RabbitMQ queue served by ``runworker`` (concurrency
   10), ``on_complete`` another RabbitMQ queue served by a second ``runworker`` whose handler
   ``bench-job-completed`` (``bench/jobs.py``) takes the time by its first statement and sends
   it over UDP. latency = that time - the latest ``finished_at`` of the run's instances (set
   by the worker when the last instance ended, before its transaction commits), one clock.
   p50 and p99 per repeat. Target: p99 under 100 ms. Peer: the same number of Celery chords
   of ``LATENCY_SIZE`` tasks, each returning ``time.time()`` as it ends; the callback's time
   minus the latest of those (dominated by ``chord_unlock``'s one-second interval).
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from bench.harness import Limit, Row, Target, interleave, paired, percentile
from bench.jobs import COMPLETED_HANDLER, JOB, PORT_VARIABLE
from bench.options import BenchError, Options
from bench.processes import RelayProcess
from bench.scenarios.workers import ConsumerProcess, delete_celery_queue
from bench.setup import Bench

NAME = "jobs"
TITLE = "Jobs: fan-out instances/s vs a Celery chord, start cost, completion latency"

PARALLELISM = 100
CONCURRENCY = 10
WARMUP = 20
FAN_OUT_ENGINES = ("rabbitmq", "database")
SIZES = {
    # instances per fan-out run, per start-cost run; latency runs (of LATENCY_SIZE) per repeat
    "full": {"fanout": 10_000, "start": 100_000, "latency_runs": 30},
    "quick": {"fanout": 500, "start": 5_000, "latency_runs": 5},
}
LATENCY_SIZE = 10
START_BATCH = 5_000  # jobs.runs.BULK_BATCH
THROUGHPUT_TARGET = Target(1.0)
START_TARGET = Limit(5, unit="s")
LATENCY_TARGET = Limit(100, unit="ms")
CELERY_NAME = "Celery chord (prefork c=10, db backend)"
RUN_TIMEOUT = 900.0
POLL_SECONDS = 0.02


# -- arrivals over UDP ------------------------------------------------------------------------


class Datagrams:
    """First datagram per key (``"<key> <float> …"``), from ``bench.jobs``' completion handler
    (``run_id time``) and the chord callback (``tag time last_task_time``)."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port = int(self.socket.getsockname()[1])
        self.got: dict[str, tuple[float, ...]] = {}
        self._condition = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.socket.recv(512)
            except TimeoutError:
                continue
            try:
                key, *values = data.decode().split()
                numbers = tuple(float(v) for v in values)
            except ValueError:
                continue
            with self._condition:
                self.got.setdefault(key, numbers)
                self._condition.notify_all()

    def wait(
        self, key: str, timeout: float, alive: Callable[[], str | None] = lambda: None
    ) -> tuple[float, ...]:
        deadline = time.monotonic() + timeout
        with self._condition:
            while key not in self.got:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise BenchError(f"no completion datagram for {key} within {timeout:.0f} s")
                dead = alive()
                if dead:
                    raise BenchError(f"{dead} exited before {key} completed")
                self._condition.wait(min(remaining, 0.5))
            return self.got[key]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.socket.close()


# -- our side ---------------------------------------------------------------------------------


def job_env(bench: Bench, port: int) -> dict[str, str]:
    return bench.child_env(QUAYMASTER_JOB_MODULES="bench.jobs", **{PORT_VARIABLE: str(port)})


def runworker(label: str, queue: Any, env: dict[str, str], *modules: str) -> ConsumerProcess:
    command = [sys.executable, "manage.py", "runworker", queue.name]
    command += ["--concurrency", str(CONCURRENCY)]
    for module in modules:
        command += ["--handlers-module", module]
    worker = ConsumerProcess(label, command, env)
    worker.wait_for_output("worker: serving")
    return worker


@contextlib.contextmanager
def our_processes(
    bench: Bench, label: str, env: dict[str, str], workers: list[tuple[Any, tuple[str, ...]]]
) -> Iterator[Callable[[], str | None]]:
    """One relay and a ``runworker`` per (queue, handler modules); yields ``dead()``, the
    name of a process that exited, if any."""
    with contextlib.ExitStack() as stack:
        relay = RelayProcess(env, name=f"jobs-{label}-relay").wait_ready()
        stack.callback(relay.stop)
        started: list[ConsumerProcess] = []
        for n, (queue, modules) in enumerate(workers):
            worker = runworker(f"jobs-{label}-worker{n}", queue, env, *modules)
            stack.callback(worker.stop)
            started.append(worker)

        def dead() -> str | None:
            if relay.process.poll() is not None:
                return f"the relay (see var/bench/{relay.name}.log)"
            for worker in started:
                if not worker.alive():
                    return f"{worker.label} (see {worker.log_path})"
            return None

        yield dead


def params(count: int) -> list[dict[str, Any]]:
    return [{"n": n} for n in range(count)]


def wait_completed(run_id: uuid.UUID, timeout: float, dead: Callable[[], str | None]) -> None:
    """Until the run is in a final state and its ``job.completed`` row has been published."""
    from jobs.models import JobRun
    from jobs.states import TERMINAL_RUN_STATES
    from queues.models import OutboxMessage, OutboxState

    deadline = time.monotonic() + timeout
    key = f"job-run:{run_id}"
    while True:
        state = JobRun.objects.filter(pk=run_id).values_list("state", flat=True).first()
        if (
            state in TERMINAL_RUN_STATES
            and OutboxMessage.objects.filter(ordering_key=key, state=OutboxState.PUBLISHED).exists()
        ):
            return
        if time.monotonic() > deadline:
            raise BenchError(f"run {run_id} is still {state} after {timeout:.0f} s")
        if problem := dead():
            raise BenchError(f"{problem} exited during run {run_id}")
        time.sleep(POLL_SECONDS)


def check_run(run_id: uuid.UUID, count: int) -> int:
    """How many of the run's instances did not complete (0 when all did, exactly once)."""
    from jobs.models import JobInstance, JobRun

    run = JobRun.objects.get(pk=run_id)
    done = JobInstance.objects.filter(run=run, state="completed", attempts=1).count()
    return count - done if run.state == "completed" and run.completed == count else count


def fanout_ours(
    bench: Bench, engine: str, queues: tuple[Any, Any], count: int, port: int
) -> tuple[float, int]:
    """(instances per second, instances that did not complete exactly once)."""
    import jobs

    queue, events = queues
    env = job_env(bench, port)
    with our_processes(bench, f"fanout-{engine}", env, [(queue, ())]) as dead:
        warm = jobs.start(
            JOB, params(WARMUP), parallelism=PARALLELISM, queue=queue, on_complete=events
        )
        wait_completed(warm.pk, 120, dead)
        started = time.perf_counter()
        run = jobs.start(
            JOB, params(count), parallelism=PARALLELISM, queue=queue, on_complete=events
        )
        wait_completed(run.pk, RUN_TIMEOUT, dead)
        elapsed = time.perf_counter() - started
    return count / elapsed, check_run(run.pk, count)


# -- the Celery chord ---------------------------------------------------------------------------


def celery_worker(bench: Bench, name: str) -> ConsumerProcess:
    from bench.celery_chord_peer import QUEUE_VARIABLE
    from bench.harness import ROOT

    command = [
        str(ROOT / ".venv" / "bin" / "celery"),
        "-A",
        "bench.celery_chord_peer",
        "worker",
        "-Q",
        name,
        "--pool",
        "prefork",
        "--concurrency",
        str(CONCURRENCY),
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel",
        "WARNING",
    ]
    if not (ROOT / ".venv" / "bin" / "celery").exists():
        command[0:1] = [sys.executable, "-m", "celery"]
    return ConsumerProcess(
        f"jobs-celery-{name[-6:]}", command, bench.child_env(**{QUEUE_VARIABLE: name})
    )


def apply_chord(name: str, count: int, port: int, tag: str, *, stamp: bool = False) -> None:
    from celery import chord

    from bench.celery_chord_peer import done, noop

    header = [noop.s(stamp).set(queue=name) for _ in range(count)]
    chord(header)(done.s(port, tag).set(queue=name))


def truncate_celery_results() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT to_regclass('celery_taskmeta') IS NOT NULL"
            " AND to_regclass('celery_tasksetmeta') IS NOT NULL"
        )
        if cursor.fetchone()[0]:
            cursor.execute("TRUNCATE celery_taskmeta, celery_tasksetmeta")


@contextlib.contextmanager
def celery_process(
    bench: Bench, name: str, arrivals: Datagrams
) -> Iterator[Callable[[], str | None]]:
    """A Celery worker serving ``name``, warmed up by one small chord (which also proves it
    consumes: it prints nothing at WARNING)."""
    worker = celery_worker(bench, name)
    try:

        def dead() -> str | None:
            return None if worker.alive() else f"{worker.label} (see {worker.log_path})"

        tag = f"warm-{uuid.uuid4().hex[:8]}"
        apply_chord(name, 10, arrivals.port, tag)
        arrivals.wait(tag, 120, dead)
        truncate_celery_results()
        yield dead
    finally:
        worker.stop()


def fanout_celery(bench: Bench, name: str, count: int, arrivals: Datagrams) -> float:
    with celery_process(bench, name, arrivals) as dead:
        tag = f"fanout-{uuid.uuid4().hex[:8]}"
        started = time.time()
        apply_chord(name, count, arrivals.port, tag)
        ended, _ = arrivals.wait(tag, RUN_TIMEOUT, dead)
    return count / (ended - started)


# -- start cost ---------------------------------------------------------------------------------


def empty_runs(queue: Any) -> None:
    """Delete the runs on ``queue`` with their instances and outbox rows; vacuum the table."""
    from django.db import connection

    from jobs.models import JobInstance, JobRun
    from queues.models import OutboxMessage

    runs = JobRun.objects.filter(queue=queue)
    JobInstance.objects.filter(run__in=runs).delete()
    runs.delete()
    OutboxMessage.objects.filter(queue=queue).delete()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE jobs_jobinstance")


def start_ours(queue: Any, count: int) -> float:
    from jobs.runs import start

    items = params(count)
    started = time.perf_counter()
    start(JOB, items, parallelism=PARALLELISM, queue=queue)
    elapsed = time.perf_counter() - started
    empty_runs(queue)
    return elapsed


def bare_run(queue: Any, count: int) -> Any:
    from jobs.models import JobRun

    return JobRun.objects.create(job=JOB, queue=queue, total=count, parallelism=PARALLELISM)


def start_bulk_create(queue: Any, count: int) -> float:
    from django.db import transaction

    from jobs.models import JobInstance

    items = params(count)
    started = time.perf_counter()
    with transaction.atomic():
        run = bare_run(queue, count)
        JobInstance.objects.bulk_create(
            (JobInstance(id=uuid.uuid4(), run=run, index=i, params=p) for i, p in enumerate(items)),
            batch_size=START_BATCH,
        )
    elapsed = time.perf_counter() - started
    empty_runs(queue)
    return elapsed


def start_copy(queue: Any, count: int) -> float:
    """The same rows as ``bulk_create`` writes (every concrete column, with the model's
    defaults), through ``COPY FROM STDIN``."""
    from django.db import connection, transaction

    from jobs.models import JobInstance

    fields = JobInstance._meta.concrete_fields
    columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in fields)
    items = params(count)
    started = time.perf_counter()
    with transaction.atomic():
        run = bare_run(queue, count)
        sql = f"COPY jobs_jobinstance ({columns}) FROM STDIN"
        with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
            for i, p in enumerate(items):
                instance = JobInstance(id=uuid.uuid4(), run=run, index=i, params=p)
                copy.write_row(
                    [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]
                )
    elapsed = time.perf_counter() - started
    empty_runs(queue)
    return elapsed


# -- completion latency -------------------------------------------------------------------------


def latency_ours(
    bench: Bench, queues: tuple[Any, Any], runs: int, arrivals: Datagrams
) -> list[float]:
    """Seconds from the last instance's ``finished_at`` to the completion handler, per run."""
    from django.db.models import Max

    import jobs
    from jobs.models import JobInstance

    queue, events = queues
    env = job_env(bench, arrivals.port)
    workers = [(queue, ()), (events, ("bench.jobs",))]
    latencies: list[float] = []
    with our_processes(bench, "latency", env, workers) as dead:
        for n in range(runs + 1):  # the first is a warm-up
            run = jobs.start(
                JOB,
                params(LATENCY_SIZE),
                parallelism=LATENCY_SIZE,
                queue=queue,
                on_complete=events,
                on_complete_handler=COMPLETED_HANDLER,
            )
            (arrived,) = arrivals.wait(str(run.pk), 60, dead)
            last = JobInstance.objects.filter(run=run).aggregate(last=Max("finished_at"))["last"]
            if n:
                latencies.append(arrived - last.timestamp())
    return latencies


def latency_celery(bench: Bench, name: str, runs: int, arrivals: Datagrams) -> list[float]:
    latencies: list[float] = []
    with celery_process(bench, name, arrivals) as dead:
        for _ in range(runs):
            tag = f"latency-{uuid.uuid4().hex[:8]}"
            apply_chord(name, LATENCY_SIZE, arrivals.port, tag, stamp=True)
            arrived, last = arrivals.wait(tag, 60, dead)
            latencies.append(arrived - last)
    return latencies


# -- the scenario -------------------------------------------------------------------------------


def run(bench: Bench, options: Options) -> list[Row]:
    size = SIZES["quick" if options.quick else "full"]
    repeats, _ = options.size(quick=(1, 1.0), full=(3, 1.0))
    fanout_repeats = options.repeats or (1 if options.quick else 2)
    engines = [e for e in FAN_OUT_ENGINES if e in options.engines]
    celery_queue = f"bench-{bench.run_id}-jobs-chord"
    arrivals = Datagrams()
    rows: list[Row] = []
    details: dict[str, Any] = {
        "sizes": size,
        "parallelism": PARALLELISM,
        "concurrency": CONCURRENCY,
        "repeats": {"fanout": fanout_repeats, "start": repeats, "latency": repeats},
    }
    try:
        rows += _fanout(
            bench, engines, celery_queue, size["fanout"], fanout_repeats, arrivals, details
        )
        rows += _start_cost(bench, size["start"], repeats, details)
        if "rabbitmq" in options.engines:
            rows += _latency(bench, celery_queue, size["latency_runs"], repeats, arrivals, details)
    finally:
        arrivals.close()
        delete_celery_queue(celery_queue)
        bench.details[NAME] = details
    return rows


def _fanout(
    bench: Bench,
    engines: list[str],
    celery_queue: str,
    count: int,
    repeats: int,
    arrivals: Datagrams,
    details: dict[str, Any],
) -> list[Row]:
    ours: dict[str, list[float]] = {e: [] for e in engines}
    errors: dict[str, int] = {e: 0 for e in engines}
    chord: list[float] = []
    measures: list[Callable[[int], None]] = []
    for engine in engines:
        queues = (
            bench.make_queue(engine, "jobs-fanout", visibility_timeout=30, max_attempts=5),
            bench.make_queue(engine, "jobs-fanout-done"),
        )

        def one(_: int, engine: str = engine, queues: tuple[Any, Any] = queues) -> None:
            rate, missed = fanout_ours(bench, engine, queues, count, arrivals.port)
            ours[engine].append(rate)
            errors[engine] += missed

        measures.append(one)
    measures.append(lambda _: chord.append(fanout_celery(bench, celery_queue, count, arrivals)))
    interleave(repeats, *measures)
    details["fanout"] = {"instances": count, "ours": ours, "celery_chord": chord}
    return [
        paired(
            NAME,
            f"fan-out {count:,} no-op, {engine}, parallelism {PARALLELISM}",
            "inst/s",
            ours[engine],
            CELERY_NAME,
            chord,
            THROUGHPUT_TARGET,
            errors=errors[engine],
            note="start → job.completed published; chord: apply → callback",
        )
        for engine in engines
    ]


def _start_cost(bench: Bench, count: int, repeats: int, details: dict[str, Any]) -> list[Row]:
    queue = bench.make_queue("database", "jobs-start")
    ours: list[float] = []
    bulk: list[float] = []
    copy: list[float] = []
    start_ours(queue, 100)  # warm-up: imports, the job registry, the queue row
    interleave(
        repeats,
        lambda _: ours.append(start_ours(queue, count)),
        lambda _: bulk.append(start_bulk_create(queue, count)),
        lambda _: copy.append(start_copy(queue, count)),
    )
    details["start"] = {"instances": count, "ours": ours, "bulk_create": bulk, "copy": copy}
    measure = f"start a {count:,}-instance run"
    return [
        paired(NAME, measure, "s", ours, "bare bulk_create", bulk, START_TARGET),
        paired(NAME, measure, "s", ours, "COPY", copy),
    ]


def _latency(
    bench: Bench,
    celery_queue: str,
    runs: int,
    repeats: int,
    arrivals: Datagrams,
    details: dict[str, Any],
) -> list[Row]:
    queues = (
        bench.make_queue("rabbitmq", "jobs-latency", visibility_timeout=30, max_attempts=5),
        bench.make_queue("rabbitmq", "jobs-latency-done"),
    )
    ours: list[list[float]] = []
    chord: list[list[float]] = []
    interleave(
        repeats,
        lambda _: ours.append(latency_ours(bench, queues, runs, arrivals)),
        lambda _: chord.append(latency_celery(bench, celery_queue, runs, arrivals)),
    )
    details["latency"] = {
        "runs": runs,
        "instances": LATENCY_SIZE,
        "ours_seconds": ours,
        "celery_chord_seconds": chord,
    }
    rows = []
    for pct in (50, 99):
        rows.append(
            paired(
                f"{NAME}/postgresql+rabbitmq",
                f"last done → job.completed handled, p{pct}, {runs} runs of {LATENCY_SIZE}",
                "ms",
                [percentile(r, pct) * 1000 for r in ours],
                "Celery chord: last task → callback",
                [percentile(r, pct) * 1000 for r in chord],
                LATENCY_TARGET if pct == 99 else None,
                note="chord_unlock polls every 1 s (database backend)",
            )
        )
    return rows
