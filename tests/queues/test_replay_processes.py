"""A replay on real processes: its runner (``manage.py replay``) SIGKILLed mid-replay and a
relay SIGKILLed mid-replay; the replay resumes after its last chunk and every selected
record's current version reaches Kafka, once per message id (at least once: a duplicate
carries the same id), with no record sent under two message ids."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import defaultdict

import pytest

from queues.backends import get_backend
from queues.models import OutboxMessage, Queue, QueueLink
from queues.models.replay import Replay, ReplayState
from queues.relay import Relay
from queues.replay import driver, service
from tests.queues.backends.engines import Engine
from tests.queues.helpers import wait_for
from tests.queues.outbox_helpers import ROOT, RelayProcess, linked_table, pending
from tests.queues.outbox_helpers import test_database_url as database_url
from zstorage import records
from zstorage.models import Record

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]


def _kafka_queue(broker: Engine) -> Queue:
    queue = broker.make_queue(partitions=3)
    with get_backend(queue) as backend:
        backend.provision()
    return queue


def _written(replay: Replay) -> int:
    return Replay.objects.get(pk=replay.pk).written


@pytest.mark.parametrize("broker", ["kafka"], indirect=True)
def test_a_replay_outlives_its_runner_and_a_relay_killed_midway(broker: Engine):
    queue = _kafka_queue(broker)
    table = linked_table(queue)
    made = records.bulk_create(
        table, [{"number": f"N-{n}", "status": "new" if n % 4 == 0 else "paid"} for n in range(400)]
    )
    records.update_record(table, made[1].pk, {"total": "5"})
    OutboxMessage.objects.all().delete()  # the topic is to hold the replay's messages only
    expected = dict(
        Record.objects.filter(table=table, data__status="paid").values_list("id", "version")
    )
    replay = service.start(QueueLink.objects.get(table=table), {"filter": {"status": "paid"}}, 500)
    env = {**os.environ, "DATABASE_URL": database_url(), "QUAYMASTER_REPLAY_LEASE_SECONDS": "0.3"}
    relay = RelayProcess("--batch-size", "50", "--lease-seconds", "1")
    runner = subprocess.Popen(
        [sys.executable, "manage.py", "replay", "--resume", str(replay.pk)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: _written(replay) >= 50, 30, "the runner to write some chunks")
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=10)
        wait_for(lambda: pending(queue) < _written(replay), 30, "the relay to publish some")
    finally:
        relay.kill()
    killed_at = _written(replay)
    assert killed_at < len(expected), "the runner finished before the kill: replay more records"

    # The scheduler's tick resumes it once the dead runner's lease expired.
    wait_for(
        lambda: driver.run_due(5.0) and Replay.objects.get(pk=replay.pk).ended,
        30,
        "the tick to resume and finish the replay",
    )
    assert Replay.objects.get(pk=replay.pk).state == ReplayState.COMPLETED
    second = Relay()  # a relay again, here in the test's process
    try:
        wait_for(lambda: second.run_once() == 0 and pending(queue) == 0, 60, "the rest published")
    finally:
        second.close()

    written = {str(m) for m in OutboxMessage.objects.values_list("message_id", flat=True)}
    assert len(written) == len(expected), "the outbox got one row per record"
    held = broker.read_back(queue, broker.messages_in_topic(queue))
    assert {r.message_id for r in held} == written, "every message arrived, duplicates included"
    ids_per_record: dict[int, set[str]] = defaultdict(set)
    for message in held:
        body = json.loads(message.body)
        assert (body["event"], body["replay_id"]) == ("replay", str(replay.replay_id))
        assert body["version"] == expected[body["record_id"]]
        ids_per_record[body["record_id"]].add(body["message_id"])
    assert set(ids_per_record) == set(expected)
    assert all(len(ids) == 1 for ids in ids_per_record.values()), "no record sent twice"
    broker.cleanup()
