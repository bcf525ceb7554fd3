"""Every Prometheus metric the platform exports, and how a process serves them.

One leaf module (it imports prometheus_client, the standard library and ``django.conf``
only): apps import their metrics from here, so a family is defined once and a dashboard or
alert rule can be checked against this file (``tests/quaymaster/test_metrics.py``). Label
``queue`` is the queue's name, ``engine`` its type.

Three ways a value gets here:

* counted where it happens (a request, a publish, a fetch, a settlement): a counter's
  increment costs about a microsecond and never touches the database;
* set by a worker about itself (in flight, prefetch);
* sampled on an interval by ``Sampling`` (outbox backlog, engine depth and lag, open job
  runs) through functions the apps register with ``register_sampler``: a scrape reads the
  last sample and never waits for a database or a broker, so a dead broker cannot hang it
  (``quaymaster_sampler_last_success_timestamp_seconds`` shows a stale sample).

Serving: the web process answers ``/metrics`` (``quaymaster.metrics_views``); ``relay``,
``runworker``, ``runworkers`` and the Celery processes take ``--metrics-port``
(``start_metrics_server``). Processes that share one exposition — gunicorn's workers, the
``runworker`` children of ``runworkers``, Celery's pool — use prometheus_client's
multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR`` must be set before prometheus_client is first
imported (``platform/gunicorn.conf.py``, ``runworkers``, ``quaymaster.celery`` do it), every
process writes its values to files there, and ``registry()`` merges them.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import threading
import time
from argparse import ArgumentParser
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
    start_http_server,
)

log = logging.getLogger("quaymaster.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: Seconds: from a fast database publish to a slow broker round trip or handler.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
#: Seconds: job instances and runs last longer.
JOB_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)

# -- web --------------------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "quaymaster_http_requests_total",
    "HTTP requests answered by the web process, by URL name (view), method and status.",
    ["view", "method", "status"],
)
HTTP_DURATION = Histogram(
    "quaymaster_http_request_duration_seconds",
    "Time to answer an HTTP request, by URL name (view) and method.",
    ["view", "method"],
    buckets=LATENCY_BUCKETS,
)

# -- the publish API --------------------------------------------------------------------------

API_PUBLISHED = Counter(
    "quaymaster_api_published_total",
    "Messages the publish API put on a queue (the broker confirmed them).",
    ["queue", "engine"],
)
API_PUBLISH_SECONDS = Histogram(
    "quaymaster_api_publish_seconds",
    "Broker latency of one publish API call (one batch), success or failure.",
    ["queue", "engine"],
    buckets=LATENCY_BUCKETS,
)
API_PUBLISH_ERRORS = Counter(
    "quaymaster_api_publish_errors_total",
    "Publish API calls the broker refused or did not answer, by the error's code.",
    ["queue", "engine", "code"],
)

# -- the outbox relay -------------------------------------------------------------------------

RELAY_PUBLISHED = Counter(
    "quaymaster_relay_published_total",
    "Outbox rows the relay published and marked.",
    ["queue", "engine"],
)
RELAY_FAILED_BATCHES = Counter(
    "quaymaster_relay_failed_batches_total",
    "Relay batches the broker refused in whole or part (the queue backs off), or parked rows.",
    ["queue", "engine"],
)
RELAY_PUBLISH_SECONDS = Histogram(
    "quaymaster_relay_publish_seconds",
    "Broker latency of one relay batch.",
    ["queue", "engine"],
    buckets=LATENCY_BUCKETS,
)
RELAY_LEASES = Counter(
    "quaymaster_relay_leases_total",
    "Lease attempts of this relay on a queue with due rows: acquired, or busy (another relay "
    "holds it).",
    ["queue", "result"],
)
RELAY_INFO = Gauge(
    "quaymaster_relay_info",
    "1 per running relay, labelled with the owner name it writes into the queues' leases.",
    ["owner"],
    multiprocess_mode="livesum",
)
OUTBOX_PENDING = Gauge(
    "quaymaster_outbox_pending",
    "Outbox rows waiting to be published (sampled).",
    ["queue"],
    multiprocess_mode="mostrecent",
)
OUTBOX_FAILED = Gauge(
    "quaymaster_outbox_failed",
    "Outbox rows parked as failed, waiting for an admin (sampled).",
    ["queue"],
    multiprocess_mode="mostrecent",
)
OUTBOX_OLDEST_AGE = Gauge(
    "quaymaster_outbox_oldest_pending_age_seconds",
    "Age of the oldest pending outbox row, 0 without one (sampled).",
    ["queue"],
    multiprocess_mode="mostrecent",
)

# -- workers ----------------------------------------------------------------------------------

WORKER_FETCHED = Counter(
    "quaymaster_worker_fetched_total", "Deliveries a worker fetched from its queue.", ["queue"]
)
#: The outcomes of ``WORKER_SETTLED`` (label ``outcome``), by ``workers.job.Settlement``.
SETTLED_OUTCOMES = ("acked", "retried", "dead_lettered", "not_acked", "released")
WORKER_SETTLED = Counter(
    "quaymaster_worker_settled_total",
    "Deliveries a worker settled with the engine: acked, retried, dead_lettered, not_acked "
    "(the handler returned without settling) or released (given back at shutdown).",
    ["queue", "handler", "outcome"],
)
WORKER_SETTLE_ERRORS = Counter(
    "quaymaster_worker_settle_errors_total",
    "Settlements the engine refused or did not answer (the message comes back).",
    ["queue"],
)
HANDLER_DURATION = Histogram(
    "quaymaster_handler_duration_seconds",
    "Time a handler ran for one message (a batch handler: the whole batch).",
    ["queue", "handler"],
    buckets=LATENCY_BUCKETS,
)
HANDLER_FAILURES = Counter(
    "quaymaster_handler_failures_total",
    "Handler runs that raised (or messages that could not be decoded).",
    ["queue", "handler"],
)
WORKER_IN_FLIGHT = Gauge(
    "quaymaster_worker_in_flight",
    "Deliveries fetched and not yet settled, summed over live worker processes.",
    ["queue"],
    multiprocess_mode="livesum",
)
WORKER_PREFETCH = Gauge(
    "quaymaster_worker_prefetch",
    "The most deliveries the live worker processes may hold fetched-but-unsettled (their "
    "concurrency plus room for batches), summed.",
    ["queue"],
    multiprocess_mode="livesum",
)
WORKER_HELD_BACK = Gauge(
    "quaymaster_worker_held_back",
    "Deliveries fetched and waiting for their ordering key (a message of the key running or "
    "retrying), summed over live worker processes.",
    ["queue"],
    multiprocess_mode="livesum",
)

# -- engines (sampled) ------------------------------------------------------------------------

ENGINE_UP = Gauge(
    "quaymaster_engine_up",
    "1 when the queue's engine answered the last stats sample, 0 when it did not.",
    ["queue", "engine"],
    multiprocess_mode="mostrecent",
)
ENGINE_DEPTH = Gauge(
    "quaymaster_engine_depth",
    "Messages waiting in the queue, as its engine reports them (sampled).",
    ["queue", "engine"],
    multiprocess_mode="mostrecent",
)
ENGINE_IN_FLIGHT = Gauge(
    "quaymaster_engine_in_flight",
    "Messages fetched and not yet acknowledged, as the engine reports them (sampled).",
    ["queue", "engine"],
    multiprocess_mode="mostrecent",
)
ENGINE_DEAD_LETTERS = Gauge(
    "quaymaster_engine_dead_letters",
    "Messages in the queue's dead-letter queue (sampled).",
    ["queue", "engine"],
    multiprocess_mode="mostrecent",
)
ENGINE_CONSUMER_LAG = Gauge(
    "quaymaster_engine_consumer_lag",
    "Kafka: the consumer group's distance from the end of the log (sampled).",
    ["queue", "engine"],
    multiprocess_mode="mostrecent",
)
ENGINE_CONSUMERS = Gauge(
    "quaymaster_engine_consumers",
    "RabbitMQ: consumers attached to the queue (sampled).",
    ["queue", "engine"],
    multiprocess_mode="mostrecent",
)

# -- jobs -------------------------------------------------------------------------------------

JOB_RUNS = Counter(
    "quaymaster_job_runs_total",
    "Job runs entering a state (scheduled or active at start, then each change).",
    ["job", "state"],
)
JOB_RUN_DURATION = Histogram(
    "quaymaster_job_run_duration_seconds",
    "From a run's creation to its end (completed, completed_with_errors, cancelled, failed).",
    ["job"],
    buckets=JOB_BUCKETS,
)
JOB_INSTANCES = Counter(
    "quaymaster_job_instances_total",
    "Job instances that ended, by their final state (completed, errored, cancelled).",
    ["job", "state"],
)
JOB_INSTANCE_DURATION = Histogram(
    "quaymaster_job_instance_duration_seconds",
    "From an instance's first start to its end.",
    ["job"],
    buckets=JOB_BUCKETS,
)
JOB_RUNS_OPEN = Gauge(
    "quaymaster_job_runs_open",
    "Runs not yet ended, by job and state (sampled).",
    ["job", "state"],
    multiprocess_mode="mostrecent",
)

# -- Celery -----------------------------------------------------------------------------------

CELERY_TASKS = Counter(
    "quaymaster_celery_tasks_total",
    "Celery tasks run (schedule fires, the jobs tick, housekeeping), by task and final state.",
    ["task", "state"],
)

# -- sampling ---------------------------------------------------------------------------------

SAMPLER_ERRORS = Counter(
    "quaymaster_sampler_errors_total", "Samples that failed, by sampler.", ["sampler"]
)
SAMPLER_LAST_SUCCESS = Gauge(
    "quaymaster_sampler_last_success_timestamp_seconds",
    "Unix time of the sampler's last complete sample.",
    ["sampler"],
    multiprocess_mode="max",
)

#: Functions that set sampled gauges, by name; apps register theirs in ``AppConfig.ready``.
SAMPLERS: dict[str, Callable[[], None]] = {}


def register_sampler(name: str, sample: Callable[[], None]) -> None:
    """Run ``sample`` on every sampling round of a process that samples (``relay`` with
    ``--metrics-port``). It runs in the sampling thread: it closes what it opens (database
    connections included) and bounds its own waits."""
    SAMPLERS[name] = sample


def sample_once(names: list[str] | None = None) -> None:
    """One round of the registered samplers (or those named), each failure counted and logged."""
    for name, sample in list(SAMPLERS.items()):
        if names is not None and name not in names:
            continue
        try:
            sample()
        except Exception:
            SAMPLER_ERRORS.labels(name).inc()
            log.exception("metrics: sampler %s failed", name)
        else:
            SAMPLER_LAST_SUCCESS.labels(name).set(time.time())


class Sampling:
    """A daemon thread running ``sample_once`` every ``interval`` seconds until ``stop``."""

    def __init__(self, interval: float | None = None) -> None:
        self.interval = interval or float(
            getattr(settings, "QUAYMASTER_METRICS_SAMPLE_SECONDS", 15)
        )
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics-sampling", daemon=True)

    def start(self) -> Sampling:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            sample_once()
            self._stopping.wait(self.interval)


# -- serving ----------------------------------------------------------------------------------


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


class _LiveProcessesCollector(multiprocess.MultiProcessCollector):
    """prometheus_client's merge of the directory, which first drops the live gauges of
    processes that have ended without ``process_exited`` being called for them (a killed
    ``runworker`` child, a gunicorn worker killed by its master's timeout)."""

    def collect(self) -> Any:
        forget_dead_processes(self._path)
        return super().collect()


def forget_dead_processes(path: str) -> None:
    for live in Path(path).glob("gauge_live*_*.db"):
        pid = live.stem.rpartition("_")[2]
        if pid.isdigit() and not _alive(int(pid)):
            multiprocess.mark_process_dead(int(pid), path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def registry() -> CollectorRegistry:
    """What this process exposes: every process's values merged (multiprocess mode), or this
    process's own registry."""
    path = multiprocess_dir()
    if path is None:
        return REGISTRY
    merged = CollectorRegistry()
    _LiveProcessesCollector(merged, path=path)
    return merged


def add_metrics_argument(parser: ArgumentParser) -> None:
    """``--metrics-port`` for a long-running command."""
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="Serve Prometheus metrics on this port (bound to QUAYMASTER_METRICS_BIND, "
        "loopback by default).",
    )


def prepare_multiprocess_dir(path: Path) -> str:
    """Empty ``path`` (values of processes of an earlier start would be summed in) and make it
    the multiprocess directory of this process and the processes it starts. Call it before
    prometheus_client is imported anywhere in this process (see the module docstring)."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)
    os.environ[MULTIPROC_ENV] = str(path)
    return str(path)


def own_multiprocess_dir(parent: Path, prefix: str) -> Path:
    """A fresh ``<parent>/<prefix>-<pid>`` made this process's multiprocess directory (and its
    children's), removed when this process exits; those of ``prefix`` whose process is gone
    (killed before it could remove its own) are removed now."""
    for other in parent.glob(f"{prefix}-*"):
        pid = other.name.rpartition("-")[2]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(other, ignore_errors=True)
    owner = os.getpid()
    path = parent / f"{prefix}-{owner}"
    prepare_multiprocess_dir(path)

    def remove() -> None:
        if os.getpid() == owner:  # not in a forked child that runs exit handlers
            shutil.rmtree(path, ignore_errors=True)

    atexit.register(remove)
    return path


def process_exited(pid: int) -> None:
    """Drop a dead process's live gauges (``livesum``…) from the multiprocess directory; its
    counters stay, as the totals they are."""
    path = multiprocess_dir()
    if path is not None:
        multiprocess.mark_process_dead(pid, path)


def start_metrics_server(port: int, addr: str | None = None) -> Any:
    """Serve ``registry()`` over HTTP on ``port`` from a daemon thread (``--metrics-port``);
    ``addr`` defaults to ``QUAYMASTER_METRICS_BIND`` (loopback). Returns the server."""
    host = addr or str(getattr(settings, "QUAYMASTER_METRICS_BIND", "127.0.0.1"))
    server, _thread = start_http_server(port, addr=host, registry=registry())
    log.info("metrics: serving on http://%s:%d/metrics", host, port)
    return server
