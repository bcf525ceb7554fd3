"""``runworkers`` makes each Kafka child a static member of its consumer group: the id of a
slot survives the child's restarts (so a restarted worker takes its partitions back without a
rebalance) and differs between slots, supervisors and a queue's settings versions (two live
members never share one)."""

from __future__ import annotations

import pytest

from queues.models import Queue, QueueType
from workers.supervisor import Supervisor, SupervisorOptions


def _member(command: list[str]) -> str | None:
    if "--group-instance-id" not in command:
        return None
    return command[command.index("--group-instance-id") + 1]


@pytest.mark.django_db
def test_kafka_children_have_a_static_member_id_per_slot_and_settings_version():
    kafka = Queue.objects.create(name="orders", type=QueueType.KAFKA, url="127.0.0.1:9092")
    database = Queue.objects.create(name="mails", type=QueueType.DATABASE)
    one = Supervisor(SupervisorOptions(instance_name="host-a"))
    other = Supervisor(SupervisorOptions(instance_name="host-b"))

    first = _member(one.command(kafka, 0))
    assert first is not None
    assert _member(one.command(kafka, 0)) == first, "a restart of the slot keeps its id"
    assert _member(one.command(kafka, 1)) != first
    assert _member(other.command(kafka, 0)) != first
    assert _member(one.command(database, 0)) is None, "only Kafka has group members"

    kafka.save()  # new settings: the replacement runs beside the old child
    kafka.refresh_from_db()
    assert _member(one.command(kafka, 0)) != first
