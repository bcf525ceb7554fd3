"""How a worker's consumer belongs to its group, and so how fast a dead one's partitions move.

A consumer that dies without leaving (SIGKILL, a lost host) keeps its partitions until the
group coordinator stops hearing its heartbeats: the **session timeout**. librdkafka's default
is 45 s; here it is ``QUAYMASTER_KAFKA_SESSION_TIMEOUT_MS`` (default 10,000; the broker accepts
``group.min.session.timeout.ms`` to ``group.max.session.timeout.ms``, 6,000 to 1,800,000 by
default), with heartbeats every third of it. librdkafka heartbeats from its own thread, so a
busy handler (or the GIL) never delays them: only a dead process, a frozen host or a network
cut ends a session.

**Static membership** (KIP-345, ``group.instance.id``): a member that comes back under the same
instance id within its session takes its place and its partitions again, without a rebalance,
so the other members never stop. ``manage.py runworkers`` gives each child an id stable across
restarts of the same slot (``<instance name>:<queue id>:<slot>:<queue version>``, see
``workers.supervisor``); ``manage.py runworker --group-instance-id ID`` sets one by hand; without
one a worker is a dynamic member (its restart is a new member: a rebalance, which waits for the
dead member's session to end). Two live consumers with one id fence each other: an id must be
unique among a group's live members. A static member leaving (SIGTERM) does not leave the group
either: its partitions wait for its session to end unless it is back before.

``QUAYMASTER_KAFKA_GROUP_PROTOCOL=consumer`` uses the KIP-848 group protocol (Kafka 4.0+,
librdkafka 2.12+ GA): the broker assigns partitions incrementally, so a member joining or
leaving never stops the others; the session timeout is then the broker's
(``group.consumer.session.timeout.ms``, 45 s by default and at least
``group.consumer.min.session.timeout.ms``, also 45 s), and ours is not sent (librdkafka refuses
it with that protocol). Default: ``classic``.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings

#: The worker process's static group member id, when it has one (set by ``runworker``).
INSTANCE_ENV = "QUAYMASTER_KAFKA_GROUP_INSTANCE_ID"
DEFAULT_SESSION_MS = 10_000


def session_timeout_ms() -> int:
    return int(getattr(settings, "QUAYMASTER_KAFKA_SESSION_TIMEOUT_MS", DEFAULT_SESSION_MS))


def group_protocol() -> str:
    return str(getattr(settings, "QUAYMASTER_KAFKA_GROUP_PROTOCOL", "classic"))


def membership_config() -> dict[str, Any]:
    """The group member's librdkafka settings: protocol, session and heartbeat, instance id."""
    config: dict[str, Any] = {}
    instance = os.environ.get(INSTANCE_ENV, "").strip()
    if instance:
        config["group.instance.id"] = instance
    if group_protocol() == "consumer":
        config["group.protocol"] = "consumer"
        return config
    session = session_timeout_ms()
    config["session.timeout.ms"] = session
    config["heartbeat.interval.ms"] = max(100, session // 3)
    return config
