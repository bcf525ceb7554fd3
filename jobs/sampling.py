"""The jobs' sampled metric: runs not yet ended, by job and state (one grouped count over
the runs' state index). ``JobsConfig.ready`` registers it with ``quaymaster.metrics``."""

from __future__ import annotations

from django.db import close_old_connections
from django.db.models import Count

from jobs.models import JobRun
from jobs.states import OPEN_RUN_STATES
from quaymaster import metrics

#: Label sets set by the last round, to set those no longer open back to 0.
_labels: set[tuple[str, str]] = set()


def sample_open_runs() -> None:
    close_old_connections()
    try:
        found = {
            (job, state): n
            for job, state, n in JobRun.objects.filter(state__in=OPEN_RUN_STATES)
            .order_by()
            .values_list("job", "state")
            .annotate(n=Count("pk"))
            .values_list("job", "state", "n")
        }
    finally:
        close_old_connections()
    for labels in _labels - found.keys():
        metrics.JOB_RUNS_OPEN.labels(*labels).set(0)
    for labels, n in found.items():
        metrics.JOB_RUNS_OPEN.labels(*labels).set(n)
    _labels.update(found)
