"""The Celery app. Jobs and schedules (a later issue) run on it; configuration comes from
Django settings under the ``CELERY_`` prefix."""

from __future__ import annotations

import os
from pathlib import Path

from celery import Celery

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
