"""The bench's RabbitMQ peer holds the guarantee it is compared under: a batch counts as done
only once RabbitMQ confirmed every message of it, and a refused message fails the batch."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from bench.clients import RabbitPublisher
from tests.bench.test_bench_quick import assert_numbers, run_quick
from tests.services import service_env

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def channel() -> Iterator[Any]:
    import amqp

    parts = urlsplit(service_env("AMQP_URL"))
    connection = amqp.Connection(
        host=f"{parts.hostname}:{parts.port or 5672}",
        userid=parts.username or "guest",
        password=parts.password or "guest",
    )
    connection.connect()
    try:
        yield connection.channel()
    finally:
        connection.close()


def test_the_peer_returns_once_every_message_of_the_batch_is_on_the_queue(channel: Any) -> None:
    name = f"t-peer-{uuid.uuid4().hex[:8]}"
    channel.queue_declare(name, durable=True, auto_delete=False)
    try:
        with RabbitPublisher(name) as peer:
            peer.publish([json.dumps({"n": n}).encode() for n in range(300)])
            assert not peer.unconfirmed
        assert channel.queue_declare(name, passive=True).message_count == 300
    finally:
        channel.queue_delete(name)


def test_a_nacked_message_fails_the_peers_batch(channel: Any) -> None:
    name = f"t-peer-{uuid.uuid4().hex[:8]}"
    channel.queue_declare(
        name,
        durable=True,
        auto_delete=False,
        arguments={"x-max-length": 2, "x-overflow": "reject-publish"},
    )
    try:
        with RabbitPublisher(name) as peer, pytest.raises(RuntimeError, match="nack"):
            peer.publish([b"{}"] * 5)
    finally:
        channel.queue_delete(name)


@pytest.mark.postgres
@pytest.mark.timeout(300)
def test_a_quick_relay_run_on_rabbitmq_measures_the_relay_and_the_peer(tmp_path: Path) -> None:
    service_env("DATABASE_URL")
    service_env("AMQP_URL")
    run_quick(tmp_path, "relay", "--scenario", "relay", "--engine", "rabbitmq", timeout=290)
    rows = json.loads((tmp_path / "latest.json").read_text())["rows"]
    assert [(row["scenario"], row["peer_name"]) for row in rows] == [
        ("relay/rabbitmq", "bare client loop")
    ]
    assert_numbers(rows)
