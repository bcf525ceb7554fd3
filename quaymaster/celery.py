"""The Celery app. Jobs and schedules (a later issue) run on it; configuration comes from
Django settings under the ``CELERY_`` prefix."""

from __future__ import annotations

import logging.config
import os
from pathlib import Path

from celery import Celery
from celery.signals import setup_logging, task_postrun, task_prerun

from quaymaster import logs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quaymaster.settings")

app = Celery("quaymaster")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


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
