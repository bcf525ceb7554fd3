"""Prometheus metrics: after real traffic — a publish through the API, outbox rows through
the relay, an in-process worker on a database queue acking, retrying and dead-lettering, a
job run — every family is on ``/metrics`` with its labels; who may read ``/metrics``; the
dashboard and alert rules name only metrics that exist.

Counters are process-wide and the suite shares the process, so each test uses queue names of
its own and reads its own series.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.utils import timezone
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from jobs import runs
from jobs.execution import run_instance
from jobs.registry import job
from quaymaster import metrics
from quaymaster.config import metrics_networks
from queues import sampling
from queues.backends import get_backend
from queues.models import OutboxMessage, Queue
from queues.relay import Relay
from queues.services import publishers
from tests.queues.backends.engines import Engine
from tests.queues.test_publish_api import client_for, post, publisher
from tests.workers.helpers import publish
from tests.workers.test_processes import Children
from workers.context import Context
from workers.options import WorkerOptions
from workers.registry import Registry
from workers.runtime import Worker

ROOT = Path(__file__).resolve().parents[2]
#: ``QueueStats`` fields and the gauges that sample them.
FIGURES = {
    "depth": "quaymaster_engine_depth",
    "in_flight": "quaymaster_engine_in_flight",
    "dead_letters": "quaymaster_engine_dead_letters",
    "lag": "quaymaster_engine_consumer_lag",
    "consumers": "quaymaster_engine_consumers",
}
FAST = {"poll_seconds": 0.2, "busy_poll_seconds": 0.05, "retry_base_delay": 0.05}


@job("tests.metrics_double")
def double(params: dict[str, Any], ctx: Any) -> int:
    return int(params["n"]) * 2


def wait_until(check: Callable[[], bool], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(client: Client, **extra: Any) -> dict[str, list[dict[str, str]]]:
    """``/metrics`` as {family: [labels of each sample]}."""
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    families: dict[str, list[dict[str, str]]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        families.setdefault(family.name, []).extend(s.labels for s in family.samples)
    return families


def labelled(families: dict[str, list[dict[str, str]]], name: str, **labels: str) -> bool:
    return any(labels.items() <= sample.items() for sample in families.get(name, []))


@pytest.fixture
def worker_registry() -> Registry:
    registry = Registry()

    @registry.handler("log")
    def log(message: dict[str, Any], ctx: Context) -> None:
        ctx.ack()

    @registry.handler("flaky")
    def flaky(message: dict[str, Any], ctx: Context) -> None:
        if ctx.attempt == 1:
            raise RuntimeError("not yet")  # retried with backoff
        ctx.ack()

    @registry.handler("broken")
    def broken(message: dict[str, Any], ctx: Context) -> None:
        ctx.dead_letter("cannot be handled")

    registry.handler("jobs.instance")(run_instance)
    return registry


@pytest.fixture
def worker_for(worker_registry: Registry) -> Iterator[Callable[[Queue], Worker]]:
    started: list[Worker] = []

    def start(queue: Queue) -> Worker:
        worker = Worker(queue, registry=worker_registry, options=WorkerOptions(**FAST))
        worker.start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop(drain_seconds=0)


@pytest.mark.django_db(transaction=True)
def test_every_family_is_on_metrics_with_its_labels_after_real_traffic(
    worker_for: Callable[[Queue], Worker],
) -> None:
    name = f"metrics-{uuid.uuid4().hex[:8]}"
    queue = Queue.objects.create(name=name, type="database", max_attempts=3)
    # A queue whose broker is down (a closed port): refused at once.
    down = Queue.objects.create(name=f"{name}-down", type="rabbitmq", url="amqp://127.0.0.1:1/")
    web = Client()

    # The publish API: one message, one to a queue that does not exist, one the broker refuses.
    _, raw = publisher()
    api = client_for(raw)
    published = post(api, f"/api/v1/zstorage/queue/a/{name}/publish", {"handler": "log"})
    assert published.status_code == 201
    missing = post(api, "/api/v1/zstorage/queue/a/nowhere/publish", {"handler": "log"})
    assert missing.status_code == 404
    refused = post(api, f"/api/v1/zstorage/queue/a/{down.name}/publish", {"handler": "log"})
    assert refused.status_code == 503
    publishers.close()

    # The outbox through the relay: a message that raises once, one dead-lettered, a job's two
    # instances (released into the outbox by the run; a second run waits for its time), and a
    # row for the queue that is down.
    for target, handler in ((queue, "flaky"), (queue, "broken"), (down, "log")):
        OutboxMessage.objects.create(
            message_id=uuid.uuid4(), queue=target, ordering_key="", body={"handler": handler}
        )
    run = runs.start("tests.metrics_double", [{"n": 1}, {"n": 2}], queue=queue)
    later = timezone.now() + timedelta(hours=1)
    runs.start("tests.metrics_double", [{"n": 3}], queue=queue, not_before=later)
    relay = Relay(listen=False)
    try:
        assert relay.run_once() == 4
    finally:
        relay.close()

    worker = worker_for(queue)
    settled = "quaymaster_worker_settled_total"
    wait_until(
        lambda: (
            value(settled, queue=name, handler="log", outcome="acked") == 1
            and value(settled, queue=name, handler="flaky", outcome="retried") == 1
            and value(settled, queue=name, handler="flaky", outcome="acked") == 1
            and value(settled, queue=name, handler="broken", outcome="dead_lettered") == 1
            and value(settled, queue=name, handler="jobs.instance", outcome="acked") == 2
        ),
        "the worker to settle every message",
    )
    run.refresh_from_db()
    assert run.state == "completed"
    assert value("quaymaster_worker_in_flight", queue=name) == 0
    assert value("quaymaster_worker_prefetch", queue=name) == worker.options.concurrency
    metrics.sample_once(["outbox", "engines", "jobs"])

    families = scrape(web)
    engine = {"queue": name, "engine": "database"}
    sampling._backing_off.pop(down.pk, None)
    assert value("quaymaster_api_published_total", **engine) == 1
    assert value("quaymaster_relay_published_total", **engine) == 4
    assert value("quaymaster_worker_fetched_total", queue=name) == 6  # flaky came twice
    down_engine = {"queue": down.name, "engine": "rabbitmq"}
    assert value("quaymaster_api_publish_errors_total", **down_engine, code="broker_unavailable")
    assert value("quaymaster_relay_failed_batches_total", **down_engine) == 1
    assert value("quaymaster_outbox_pending", queue=down.name) == 1
    assert value("quaymaster_outbox_oldest_pending_age_seconds", queue=down.name) > 0
    assert value("quaymaster_engine_up", **down_engine) == 0
    assert value("quaymaster_engine_up", **engine) == 1
    assert value("quaymaster_handler_failures_total", queue=name, handler="flaky") == 1
    assert value("quaymaster_job_runs_open", job="tests.metrics_double", state="scheduled") == 1
    expected = {
        "quaymaster_http_requests": {
            "view": "publish-by-name",
            "method": "POST",
            "status": "201",
        },
        "quaymaster_http_request_duration_seconds": {"view": "publish-by-name", "method": "POST"},
        "quaymaster_api_published": engine,
        "quaymaster_api_publish_seconds": engine,
        "quaymaster_relay_published": engine,
        "quaymaster_relay_publish_seconds": engine,
        "quaymaster_relay_leases": {"queue": name, "result": "acquired"},
        "quaymaster_outbox_pending": {"queue": name},
        "quaymaster_outbox_failed": {"queue": name},
        "quaymaster_outbox_oldest_pending_age_seconds": {"queue": name},
        "quaymaster_worker_fetched": {"queue": name},
        "quaymaster_worker_settled": {"queue": name, "handler": "log", "outcome": "acked"},
        "quaymaster_handler_duration_seconds": {"queue": name, "handler": "broken"},
        "quaymaster_worker_in_flight": {"queue": name},
        "quaymaster_worker_prefetch": {"queue": name},
        "quaymaster_engine_up": engine,
        "quaymaster_engine_depth": engine,
        "quaymaster_engine_in_flight": engine,
        "quaymaster_engine_dead_letters": engine,
        "quaymaster_job_runs": {"job": "tests.metrics_double", "state": "completed"},
        "quaymaster_job_runs_open": {"job": "tests.metrics_double", "state": "scheduled"},
        "quaymaster_api_publish_errors": {"queue": f"{name}-down", "code": "broker_unavailable"},
        "quaymaster_relay_failed_batches": {"queue": f"{name}-down", "engine": "rabbitmq"},
        "quaymaster_handler_failures": {"queue": name, "handler": "flaky"},
        "quaymaster_job_run_duration_seconds": {"job": "tests.metrics_double"},
        "quaymaster_job_instances": {"job": "tests.metrics_double", "state": "completed"},
        "quaymaster_job_instance_duration_seconds": {"job": "tests.metrics_double"},
        "quaymaster_sampler_last_success_timestamp_seconds": {"sampler": "engines"},
    }
    absent = {f: labels for f, labels in expected.items() if not labelled(families, f, **labels)}
    assert not absent, f"not on /metrics: {absent}"
    assert labelled(families, "quaymaster_http_requests", view="publish-by-name", status="404")
    assert value("quaymaster_engine_dead_letters", **engine) == 1
    assert value("quaymaster_engine_depth", **engine) == 0
    assert value("quaymaster_outbox_pending", queue=name) == 0


@pytest.mark.django_db
def test_who_may_read_metrics(settings: Any) -> None:
    client = Client()
    assert client.get("/metrics").status_code == 200, "loopback by default"
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 404
    assert client.get("/metrics", REMOTE_ADDR="::ffff:127.0.0.1").status_code == 200
    assert client.post("/metrics").status_code == 405

    settings.QUAYMASTER_METRICS_TOKEN = "s3cret-token"
    bearer = {"HTTP_AUTHORIZATION": "Bearer s3cret-token"}
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3", **bearer).status_code == 200
    wrong = {"HTTP_AUTHORIZATION": "Bearer guess"}
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3", **wrong).status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", **wrong).status_code == 403
    odd = {"HTTP_AUTHORIZATION": "Bearer \u00e9\u00e9"}
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3", **odd).status_code == 403

    settings.QUAYMASTER_METRICS_ALLOW_NETWORKS = ["10.0.0.0/8"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 404
    assert client.get("/metrics", REMOTE_ADDR="not an address").status_code == 404

    assert metrics_networks([" 10.0.0.1 ", "", "fd00::/8"]) == ["10.0.0.1/32", "fd00::/8"]
    with pytest.raises(ImproperlyConfigured, match="QUAYMASTER_METRICS_ALLOW_NETWORKS"):
        metrics_networks(["intranet"])


@pytest.mark.django_db(transaction=True)
def test_each_brokers_own_figures_are_sampled_per_queue(broker: Engine) -> None:
    """Depth, in flight, dead letters, Kafka's consumer lag, RabbitMQ's consumers: as the
    engine reports them, under the queue's name and engine."""
    queue = broker.make_queue()
    with get_backend(queue) as backend:
        backend.provision()
    publish(queue, {"handler": "log"}, {"handler": "log"})
    sampling.sample_engines()
    labels = {"queue": queue.name, "engine": broker.type}
    assert value("quaymaster_engine_up", **labels) == 1
    with get_backend(queue) as backend:
        stats = backend.stats().as_dict()
    assert any(v is not None for v in stats.values())
    for field, family in FIGURES.items():
        if stats[field] is not None:
            assert REGISTRY.get_sample_value(family, labels) == stats[field], field


@pytest.mark.django_db(transaction=True)
def test_a_dead_broker_is_down_at_once_and_asked_again_only_after_a_back_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = f"metrics-{uuid.uuid4().hex[:8]}"
    queue = Queue.objects.create(name=name, type="rabbitmq", url="amqp://127.0.0.1:1/")
    started = time.monotonic()
    sampling.sample_engines()
    assert time.monotonic() - started < sampling.ENGINE_DEADLINE
    assert value("quaymaster_engine_up", queue=name, engine="rabbitmq") == 0

    asked: list[str] = []
    monkeypatch.setattr(sampling, "live_stats", lambda q, timeout: asked.append(q.name))
    sampling.sample_engines()
    assert asked == [], "not asked again before its back-off ends"
    assert value("quaymaster_engine_up", queue=name, engine="rabbitmq") == 0
    sampling._backing_off.pop(queue.pk)


def test_a_sampler_that_fails_is_counted_and_the_others_still_run() -> None:
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("the broker is down")

    metrics.register_sampler("tests.broken", broken)
    metrics.register_sampler("tests.fine", lambda: ran.append("fine"))
    try:
        before = value("quaymaster_sampler_errors_total", sampler="tests.broken")
        metrics.sample_once(["tests.broken", "tests.fine"])
    finally:
        del metrics.SAMPLERS["tests.broken"], metrics.SAMPLERS["tests.fine"]
    assert ran == ["fine"]
    assert value("quaymaster_sampler_errors_total", sampler="tests.broken") == before + 1
    assert value("quaymaster_sampler_last_success_timestamp_seconds", sampler="tests.fine") > 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.django_db(transaction=True)
def test_runworkers_serves_its_workers_metrics_on_its_metrics_port(tmp_path: Path) -> None:
    """The ``runworker`` children write their values into the supervisor's multiprocess
    directory; ``--metrics-port`` serves them merged."""
    name = f"metrics-{uuid.uuid4().hex[:8]}"
    queue = Queue.objects.create(name=name, type="database")
    publish(queue, {"handler": "log"})
    port = free_port()
    children = Children(tmp_path)
    process = children.start(
        "runworkers",
        *("--metrics-port", str(port), "--refresh-seconds", "0.5"),
        *("--concurrency", "2", "--drain-seconds", "1"),
    )
    acked = f'quaymaster_worker_settled_total{{handler="log",outcome="acked",queue="{name}"}} 1.0'
    seen = {"text": ""}

    def served() -> bool:
        assert process.poll() is None, children.output()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
                seen["text"] = answer.read().decode()
        except OSError:
            return False
        return acked in seen["text"]

    try:
        wait_until(served, "the child's acknowledgement on the metrics port", timeout=30)
        assert f'quaymaster_worker_prefetch{{queue="{name}"}} 2.0' in seen["text"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        children.cleanup()
    made = Path(django_settings.VAR_DIR) / "prometheus" / f"runworkers-{process.pid}"
    assert not made.exists(), "the multiprocess directory is removed at exit"


def defined_samples() -> set[str]:
    """Every sample name the families of ``quaymaster.metrics`` can produce."""
    names = set()
    for collector in vars(metrics).values():
        if isinstance(collector, MetricWrapperBase):
            for family in collector.describe():
                base = family.name
                names |= {base, f"{base}_total", f"{base}_bucket", f"{base}_count"}
                names |= {f"{base}_sum", f"{base}_created"}
    return names


def test_the_dashboard_and_the_alert_rules_name_only_metrics_that_exist() -> None:
    dashboards = sorted((ROOT / "platform" / "grafana").glob("*.json"))
    rules = sorted((ROOT / "platform" / "prometheus").glob("*.yml"))
    assert dashboards
    assert rules
    defined = defined_samples()
    for path in [*dashboards, *rules]:
        text = path.read_text()
        if path.suffix == ".json":
            json.loads(text)
        used = set(re.findall(r"\bquaymaster_[a-z_]+", text))
        assert used, f"{path.name} names no metric"
        unknown = used - defined
        assert not unknown, f"{path.name} names metrics quaymaster/metrics.py lacks: {unknown}"
