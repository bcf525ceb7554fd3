"""The Celery app. Jobs and schedules (a later issue) run on it; configuration comes from
Django settings under the ``CELERY_`` prefix.

``--metrics-port PORT`` (on ``worker`` and ``beat``; or ``QUAYMASTER_METRICS_PORT``) serves
the process's Prometheus metrics: the worker's pool processes write theirs into a
multiprocess directory (``PROMETHEUS_MULTIPROC_DIR``, else a fresh one under
``var/prometheus/``) that the main process merges. prometheus_client is imported only after
the directory is set, hence the imports inside the functions below.
"""

from __future__ import annotations

import logging.config
import os
import sys
from pathlib import Path
from typing import Any

import click
from celery import Celery
from celery.signals import (
    beat_init,
    setup_logging,
    task_postrun,
    task_prerun,
    user_preload_options,
    worker_init,
    worker_process_shutdown,
)

from quaymaster import logs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quaymaster.settings")

app = Celery("quaymaster")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.user_options["preload"].add(
    click.Option(
        ["--metrics-port"],
        type=int,
        default=None,
        help="Serve Prometheus metrics on this port (QUAYMASTER_METRICS_BIND, loopback by "
        "default); QUAYMASTER_METRICS_PORT does the same.",
    )
)

#: Set once a process of this Celery run serves the metrics (an embedded beat then does not).
SERVING_ENV = "QUAYMASTER_METRICS_SERVING"


@app.on_after_configure.connect
def _make_filesystem_folders(sender: Celery, **_: object) -> None:
    """kombu's filesystem transport (the embedded default) expects its folders to exist."""
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        folder = (sender.conf.broker_transport_options or {}).get(key)
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)


@setup_logging.connect
def _logging(**_: object) -> None:
    """Celery's worker and beat log like every other process (``LOGGING``, ``LOG_FORMAT``,
    ``LOG_LEVEL``) instead of installing their own handlers on the root logger: a receiver of
    this signal is Celery's documented way to keep its hands off logging."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@task_prerun.connect
def _bind_task(task_id: str | None = None, task: object = None, **_: object) -> None:
    """A task's lines carry its name and id (quaymaster.logs); cleared when it ends."""
    logs.clear()
    logs.bind(task=getattr(task, "name", None), task_id=task_id)


@task_postrun.connect
def _clear_task(**_: object) -> None:
    logs.clear()


@user_preload_options.connect
def _metrics_port(options: dict[str, Any], **_: object) -> None:
    port = options.get("metrics_port")
    if port is not None:
        os.environ["QUAYMASTER_METRICS_PORT"] = str(port)
    if os.environ.get("QUAYMASTER_METRICS_PORT"):
        _multiprocess_dir()


def _multiprocess_dir() -> None:
    """Give this Celery run a multiprocess directory, before prometheus_client is imported."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    if "prometheus_client" in sys.modules:  # too late: only this process's own values
        return
    from django.conf import settings  # the settings import no prometheus_client

    parent = Path(settings.VAR_DIR) / "prometheus"
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(parent / f"celery-{os.getpid()}")
    from quaymaster import metrics

    metrics.own_multiprocess_dir(parent, "celery")


def _serve() -> None:
    port = os.environ.get("QUAYMASTER_METRICS_PORT", "")
    if not port.isdigit() or os.environ.get(SERVING_ENV):
        return
    _multiprocess_dir()
    from quaymaster import metrics

    metrics.start_metrics_server(int(port))
    os.environ[SERVING_ENV] = "1"  # inherited by the pool and an embedded beat


@worker_init.connect
def _serve_worker_metrics(**_: object) -> None:
    _serve()


@beat_init.connect
def _serve_beat_metrics(**_: object) -> None:
    _serve()


@worker_process_shutdown.connect
def _pool_process_ended(**_: object) -> None:
    if os.environ.get(SERVING_ENV):
        from quaymaster import metrics

        metrics.process_exited(os.getpid())


@task_postrun.connect
def _count_task(task: Any = None, state: str | None = None, **_: object) -> None:
    from quaymaster import metrics

    metrics.CELERY_TASKS.labels(getattr(task, "name", "unknown"), state or "unknown").inc()
