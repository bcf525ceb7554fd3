"""The bench's own world: the services' addresses, a fresh PostgreSQL database (created,
migrated, dropped), a superuser and its API token, and the queues of the run (``Bench``).

Nothing here touches the project's own database or anyone else's queues: every name carries
the run id, and ``Bench.close()`` deletes what the run created on the brokers and drops the
database.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from bench.harness import ROOT
from bench.options import BenchError
from bench.queues import delete_broker_queues, orders_table, provision_queue

if TYPE_CHECKING:
    from queues.models import Queue
    from zstorage.models import Table

SERVICE_VARIABLES = ("DATABASE_URL", "AMQP_URL", "KAFKA_BOOTSTRAP_SERVERS", "SQS_ENDPOINT_URL")
#: The token's rate limit under the bench. The default (6000/min per gunicorn worker, counted in
#: each worker's local-memory cache) would answer 429 within seconds. A one-second window keeps
#: DRF's throttle history (one float per request in the window, pickled into the cache on every
#: request) as short as it is at the default rate in normal use.
BENCH_API_RATE = "100000/s"


# -- services and the database --------------------------------------------------------------------


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
        queue = provision_queue(f"bench-{self.run_id}-{purpose}-{engine}", engine, **options)
        self.queues.append(queue)
        return queue

    def linked_table(self, slug: str, queue: Queue | None) -> Table:
        """A small orders-like table; linked to ``queue`` (creates only) when one is given."""
        return orders_table(slug, queue, handler="bench")

    # -- tear-down ------------------------------------------------------------------------------

    def close(self) -> None:
        from django.db import connections

        delete_broker_queues(self.queues)
        connections.close_all()
        if not self.keep_database:
            with contextlib.suppress(Exception):
                drop_database(self.base_url, self.database)
