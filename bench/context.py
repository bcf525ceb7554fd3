"""The bench's own world: a fresh PostgreSQL database, a user and API token, queues with unique
names on the real engines, and the processes under test (gunicorn, the relay).

Nothing here touches the project's own database or anyone else's queues: every name carries
the run id, and ``close()`` deletes what the run created on the brokers and drops the database.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from bench.harness import ROOT

if TYPE_CHECKING:
    from queues.models import Queue
    from zstorage.models import Table

LOGS = ROOT / "var" / "bench"
GUNICORN_CONF = ROOT / "platform" / "gunicorn.conf.py"
SERVICE_VARIABLES = ("DATABASE_URL", "AMQP_URL", "KAFKA_BOOTSTRAP_SERVERS", "SQS_ENDPOINT_URL")
ENGINES = ("database", "rabbitmq", "kafka", "sqs")
#: The token's rate limit under the bench. The default (6000/min per gunicorn worker, counted in
#: each worker's local-memory cache) would answer 429 within seconds. A one-second window keeps
#: DRF's throttle history (one float per request in the window, pickled into the cache on every
#: request) as short as it is at the default rate in normal use.
BENCH_API_RATE = "100000/s"


class BenchError(RuntimeError):
    """The bench cannot run (services missing, a process did not start)."""


@dataclass
class Options:
    """What the command line asked for. ``repeats``/``seconds`` override a scenario's sizes."""

    quick: bool = False
    engines: tuple[str, ...] = ENGINES
    repeats: int | None = None
    seconds: float | None = None

    def size(self, *, quick: tuple[int, float], full: tuple[int, float]) -> tuple[int, float]:
        """(repeats, seconds per measurement) for this run."""
        repeats, seconds = quick if self.quick else full
        return self.repeats or repeats, self.seconds or seconds


# -- services -----------------------------------------------------------------------------------


def load_service_env() -> None:
    """Take the services' addresses from the environment, or from ``platform/services env``."""
    if all(os.environ.get(name) for name in SERVICE_VARIABLES) and os.environ[
        "DATABASE_URL"
    ].startswith(("postgres://", "postgresql://")):
        return
    try:
        out = subprocess.run(
            [str(ROOT / "platform" / "services"), "env"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise BenchError(f"platform/services env failed: {exc}") from exc
    for line in out.splitlines():
        match = re.match(r"export (\w+)=(.*)$", line.strip())
        if match:
            os.environ[match.group(1)] = shlex.split(match.group(2))[0]
    missing = [name for name in SERVICE_VARIABLES if not os.environ.get(name)]
    if missing:
        raise BenchError(f"not set: {', '.join(missing)} (run: platform/services up)")


def database_url(base: str, name: str) -> str:
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


def _admin_connect(base: str) -> Any:
    import psycopg

    parts = urlsplit(base)
    return psycopg.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        user=parts.username,
        password=parts.password,
        dbname="postgres",
        autocommit=True,
        connect_timeout=10,
    )


def create_database(base: str, name: str) -> None:
    from psycopg import sql

    with _admin_connect(base) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(base: str, name: str) -> None:
    from psycopg import sql

    with _admin_connect(base) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


# -- processes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses.
        ppid = int(text[text.rindex(")") + 2 :].split()[1])
        tree.setdefault(ppid, []).append(int(text.split(" ", 1)[0]))
    return tree


def vm_rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_mib(pid: int) -> float:
    """VmRSS of a process and all its descendants (gunicorn: the master and its workers).
    Pages shared after fork are counted once per process, as VmRSS does."""
    tree = _children()
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += vm_rss_kib(current)
        todo.extend(tree.get(current, []))
    return total / 1024


class RssSampler:
    """Samples a process tree's RSS every ``interval`` seconds in a thread; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid, self.interval = pid, interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(tree_rss_mib(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak(self) -> float:
        return max(self.samples) if self.samples else 0.0


def _stop_process(process: subprocess.Popen[Any], timeout: float = 30) -> int | None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    return process.returncode


@dataclass
class Gunicorn:
    """``gunicorn <app> --config platform/gunicorn.conf.py --workers N`` on a free port."""

    env: dict[str, str]
    name: str
    app: str = "quaymaster.wsgi"
    workers: int = 2
    config: Path = GUNICORN_CONF
    ready_path: str = "/healthz"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None

    def start(self, timeout: float = 60) -> Gunicorn:
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop())
        bind = f"127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                self.app,
                "--config",
                str(self.config),
                "--workers",
                str(self.workers),
                "--bind",
                bind,
            ],
            cwd=ROOT,
            env={**self.env, "QUAYMASTER_WEB_BIND": bind, "WEB_CONCURRENCY": str(self.workers)},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"gunicorn {self.name} exited; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.url(self.ready_path), timeout=5) as answer:
                    answer.read()
                    break
            except urllib.error.HTTPError:
                break  # it answers: any status will do
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        else:
            raise BenchError(f"gunicorn {self.name} did not answer within {timeout:.0f} s")
        self.wait_for_workers()
        return self

    def wait_for_workers(self, timeout: float = 30) -> None:
        """The master answers once one worker runs; wait until all have booted."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(_children().get(self.process.pid, [])) >= self.workers:
                return
            time.sleep(0.1)

    @property
    def log_path(self) -> Path:
        return LOGS / f"{self.name}-{self.port}.log"

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def rss_mib(self) -> float:
        return tree_rss_mib(self.pid)

    def stop(self) -> None:
        if self.process is not None:
            _stop_process(self.process)
            self.process = None
        if self.log is not None:
            self.log.close()
            self.log = None

    def __enter__(self) -> Gunicorn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RelayProcess:
    """``manage.py relay`` against the bench database, logging to ``var/bench/<name>.log``;
    ready once it printed its start line."""

    READY = "publishing the outbox"

    def __init__(self, env: dict[str, str], *args: str, name: str = "relay") -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "manage.py", "relay", *args]
        self.name = name
        self.log = open(LOGS / f"{self.name}.log", "ab")  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=self.log, text=True
        )
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if self.READY in line:
                self._ready.set()

    def wait_ready(self, timeout: float = 60) -> RelayProcess:
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"the relay did not start; see {LOGS / self.name}.log")
        return self

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_mib(self) -> float:
        return tree_rss_mib(self.pid)

    def stop(self) -> int | None:
        code = _stop_process(self.process)
        self.log.close()
        return code

    def __enter__(self) -> RelayProcess:
        return self.wait_ready()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- the bench's world --------------------------------------------------------------------------


def _short_id() -> str:
    return uuid.uuid4().hex[:6]


class Bench:
    """The run's database, user, token and queues. Create with ``Bench.open()``."""

    def __init__(self, *, database: str, keep_database: bool = False, quick: bool = False) -> None:
        self.run_id = _short_id()
        self.database = database
        self.keep_database = keep_database
        self.quick = quick
        self.base_url = os.environ["DATABASE_URL"]
        self.url = database_url(self.base_url, database)
        self.queues: list[Queue] = []
        self.token = ""
        self.details: dict[str, Any] = {}
        self.engine_versions: dict[str, str] = {}

    @classmethod
    def open(cls, *, database: str, keep_database: bool = False, quick: bool = False) -> Bench:
        load_service_env()
        bench = cls(database=database, keep_database=keep_database, quick=quick)
        bench._prepare()
        return bench

    # -- set-up ---------------------------------------------------------------------------------

    def child_env(self, **overrides: str) -> dict[str, str]:
        """The environment of every process under test: the bench database, DEBUG off (as in
        production: no query log kept per request), a rate limit the bench cannot hit."""
        env = {
            **os.environ,
            "DATABASE_URL": self.url,
            "DEBUG": "0",
            "QUAYMASTER_API_RATE": BENCH_API_RATE,
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("DJANGO_SETTINGS_MODULE", None)
        env.update(overrides)
        return env

    def _prepare(self) -> None:
        started = time.perf_counter()
        create_database(self.base_url, self.database)
        migrate = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v0"],
            cwd=ROOT,
            env=self.child_env(),
            capture_output=True,
            text=True,
        )
        if migrate.returncode != 0:
            raise BenchError(f"migrate failed:\n{migrate.stderr[-3000:]}")
        os.environ.update(
            {
                "DATABASE_URL": self.url,
                "DEBUG": "0",
                "DJANGO_SETTINGS_MODULE": "quaymaster.settings",
                "LOG_LEVEL": "WARNING",
            }
        )
        import django

        django.setup()
        from django.contrib.auth import get_user_model

        from accounts.models import ApiToken

        user = get_user_model().objects.create_superuser(
            f"bench-{self.run_id}", f"bench-{self.run_id}@example.com", uuid.uuid4().hex
        )
        _, self.token = ApiToken.issue(user, f"bench {self.run_id}")
        self.user = user
        self.details["setup_seconds"] = round(time.perf_counter() - started, 2)
        self._engine_versions()

    def _engine_versions(self) -> None:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            self.engine_versions["postgresql"] = cursor.fetchone()[0]
        with contextlib.suppress(Exception):
            import amqp

            parts = urlsplit(os.environ["AMQP_URL"])
            conn = amqp.Connection(
                host=f"{parts.hostname}:{parts.port or 5672}",
                userid=parts.username or "guest",
                password=parts.password or "guest",
                connect_timeout=5,
            )
            conn.connect()
            version = conn.server_properties.get("version")
            self.engine_versions["rabbitmq"] = (
                version.decode() if isinstance(version, bytes) else str(version)
            )
            conn.close()

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def make_queue(self, engine: str, purpose: str, **options: Any) -> Queue:
        """A queue on ``engine`` with a name unique to this run, provisioned on the engine."""
        from queues.backends import get_backend
        from queues.models import Queue

        name = f"bench-{self.run_id}-{purpose}-{engine}"
        queue = Queue(name=name, type=engine, url="", **options)
        queue.full_clean()
        queue.save()
        self.queues.append(queue)
        with get_backend(queue) as backend:
            backend.provision()
        return queue

    def linked_table(self, slug: str, queue: Queue | None) -> Table:
        """A small orders-like table; linked to ``queue`` (creates only) when one is given."""
        return orders_table(slug, queue, handler="bench")

    # -- tear-down ------------------------------------------------------------------------------

    def close(self) -> None:
        from django.db import connections

        self._delete_broker_queues()
        connections.close_all()
        if not self.keep_database:
            with contextlib.suppress(Exception):
                drop_database(self.base_url, self.database)

    def _delete_broker_queues(self) -> None:
        kafka = [q.name for q in self.queues if q.type == "kafka"]
        rabbit = [q.name for q in self.queues if q.type == "rabbitmq"]
        sqs = [q.name for q in self.queues if q.type == "sqs"]
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
    """A publish-API message of about ``size`` bytes of JSON."""
    body: dict[str, Any] = {"handler": "bench", "seq": seq, "to": "ada@example.com", "pad": ""}
    body["pad"] = "x" * max(0, size - len(str(body)))
    return body


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
