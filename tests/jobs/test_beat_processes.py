"""Real Celery processes: two beats running at once by mistake, and one Celery worker. A cron
schedule fires once for its due minute and an interval schedule once per interval (fires
counted in the database and as messages in the outbox); an edit reaches beat without a
restart."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from jobs import schedules
from jobs.models import Schedule, ScheduleFire
from queues.models import OutboxMessage
from tests.jobs.conftest import make_queue
from tests.queues.helpers import wait_for
from tests.queues.outbox_helpers import test_database_url as database_url

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def celery(tmp_path: Path, name: str, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "QUAYMASTER_VAR_DIR": str(tmp_path),  # one filesystem broker for the three processes
        "CELERY_BROKER_URL": "filesystem://",
    }
    log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115
    return subprocess.Popen(
        [str(BIN / "celery"), "--app", "quaymaster", *args, "--loglevel", "INFO"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_two_beats_fire_each_due_time_once(tmp_path: Path):
    target = make_queue("pings")
    every_minute = schedules.save(
        Schedule(name="every minute", action="publish", queue=target, kind="cron",
                 cron="* * * * *", message={"handler": "log", "from": "cron"})
    )  # fmt: skip
    every_10s = schedules.save(
        Schedule(name="every 10 s", action="publish", queue=target, kind="interval",
                 every_seconds=10, message={"handler": "log", "from": "interval"})
    )  # fmt: skip
    processes = [
        celery(tmp_path, "worker", "worker", "--concurrency", "2", "--without-gossip",
               "--without-mingle", "--without-heartbeat"),
        *[celery(tmp_path, f"beat-{n}", "beat", "--pidfile", "", "--schedule",
                 str(tmp_path / f"beat-{n}.db")) for n in (1, 2)],
    ]  # fmt: skip
    try:
        wait_for(
            lambda: (
                ScheduleFire.objects.filter(schedule=every_minute).exists()
                and ScheduleFire.objects.filter(schedule=every_10s).count() >= 2
            ),
            90,
            "the cron schedule's first fire and two of the interval's",
        )
        # An edit reaches the running beats: the interval's next fires carry the new body.
        schedules.save(every_10s, {"message": {"handler": "log", "from": "interval", "v": 2}})
        wait_for(
            lambda: OutboxMessage.objects.filter(body__v=2).exists(),
            40,
            "a fire of the edited interval schedule",
        )
    finally:
        for process in processes:
            stop(process)

    cron_fires = list(ScheduleFire.objects.filter(schedule=every_minute).order_by("due_at"))
    assert all(f.due_at.second == 0 for f in cron_fires)
    assert len({f.due_at for f in cron_fires}) == len(cron_fires)
    interval = list(
        ScheduleFire.objects.filter(schedule=every_10s)
        .order_by("due_at")
        .values_list("due_at", flat=True)
    )
    assert len(interval) >= 2
    gaps = [later - earlier for earlier, later in itertools.pairwise(interval)]
    assert min(gaps) >= dt.timedelta(seconds=9), gaps
    # One message per fire, not one per beat.
    assert OutboxMessage.objects.filter(body__from="cron").count() == len(cron_fires)
    assert OutboxMessage.objects.filter(body__from="interval").count() == len(interval)
    logs = "".join((tmp_path / f"beat-{n}.log").read_text() for n in (1, 2))
    assert logs.count("Sending due task") > len(cron_fires) + len(interval)  # both beats sent
