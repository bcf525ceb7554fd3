"""The services layer the API and the back-office call."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from queues.backends.cache import BackendCache
from queues.errors import BrokerUnavailable, MessageTooLarge
from queues.messages import OutgoingMessage
from queues.models import DatabaseMessage, Queue
from queues.services import (
    check_connection,
    create_queue,
    provision,
    publish,
    queue_stats,
    resolve_queue,
    update_queue,
)

pytestmark = pytest.mark.django_db


def test_create_queue_validates_and_encrypts() -> None:
    with pytest.raises(ValidationError):
        create_queue(name="bad name", type="database")
    queue = create_queue(
        name="mail",
        type="rabbitmq",
        url="amqp://mq:5672/",
        username="app",
        secret="pw-123456789012",
    )
    assert queue.secret_ciphertext
    assert "pw-123456789012" not in queue.secret_ciphertext
    assert queue.has_secret


def test_update_keeps_or_replaces_the_secret() -> None:
    queue = create_queue(
        name="mail", type="rabbitmq", url="amqp://mq/", username="app", secret="first-secret"
    )
    update_queue(queue, max_attempts=7)
    assert Queue.objects.get(pk=queue.pk).get_secret() == "first-secret"
    update_queue(queue, secret="second-secret")
    assert Queue.objects.get(pk=queue.pk).get_secret() == "second-secret"


def test_resolve_queue_by_id_or_name() -> None:
    first = create_queue(name="orders", type="database")
    numeric = create_queue(name="12345", type="database")
    assert resolve_queue(first.pk) == first
    assert resolve_queue(str(first.pk)) == first
    assert resolve_queue("orders") == first
    assert resolve_queue("12345") == numeric  # no queue has id 12345: then it is a name
    with pytest.raises(Queue.DoesNotExist):
        resolve_queue("missing")


def test_database_queue_end_to_end_through_services() -> None:
    queue = create_queue(name="jobs", type="database")
    provision(queue)
    assert check_connection(queue).ok
    results = publish(queue, [{"handler": "a"}, OutgoingMessage.new({"handler": "b"})])
    assert [set(r.as_response()) for r in results] == [{"message-id", "broker-id"}] * 2
    assert DatabaseMessage.objects.filter(queue=queue).count() == 2
    assert queue_stats(queue).depth == 2


# -- the publishing backends the API keeps per process ----------------------------------------


class Counting:
    """A factory of real backends that remembers what it built and what was closed."""

    def __init__(self) -> None:
        from queues.backends import get_backend

        self.built: list[Any] = []
        self.closed: list[Any] = []
        self._get = get_backend

    def __call__(self, queue: Queue) -> Any:
        backend = self._get(queue)
        original = backend.close

        def close() -> None:
            self.closed.append(backend)
            original()

        backend.close = close  # type: ignore[method-assign]
        self.built.append(backend)
        return backend


def test_the_backend_cache_reuses_one_backend_per_queue() -> None:
    queue = create_queue(name="jobs", type="database")
    factory = Counting()
    cache = BackendCache(factory)
    for n in range(3):
        with cache.lease(queue) as backend:
            backend.publish([OutgoingMessage.new({"handler": "log", "n": n})])
    assert len(factory.built) == 1
    assert factory.closed == []
    assert DatabaseMessage.objects.filter(queue=queue).count() == 3
    cache.close()
    assert factory.closed == factory.built
    assert len(cache) == 0


def test_an_edited_queue_gets_a_new_backend_and_the_old_one_is_closed() -> None:
    queue = create_queue(name="jobs", type="database")
    factory = Counting()
    cache = BackendCache(factory)
    with cache.lease(queue) as first:
        pass
    edited = update_queue(Queue.objects.get(pk=queue.pk), max_attempts=9)
    with cache.lease(edited) as second:
        assert second is not first
        assert second.queue.max_attempts == 9
    assert factory.closed == [first]
    # A caller still holding the queue as it was before the edit gets a one-off backend.
    with cache.lease(queue) as stale:
        assert stale is not second
    assert factory.closed == [first, stale]
    with cache.lease(edited) as again:
        assert again is second
    cache.close()


def test_concurrent_callers_never_share_a_backend() -> None:
    queue = create_queue(name="jobs", type="database")
    factory = Counting()
    cache = BackendCache(factory, max_idle=2)
    inside = threading.Barrier(3)
    seen: list[Any] = []

    def use() -> None:
        with cache.lease(queue) as backend:
            seen.append(backend)
            inside.wait(timeout=5)  # all three hold a backend at the same moment

    threads = [threading.Thread(target=use) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(b) for b in seen}) == 3
    assert len(cache) == 2, "at most max_idle are kept"
    assert len(factory.closed) == 1
    cache.close()


def test_a_backend_that_failed_is_closed_not_kept() -> None:
    queue = create_queue(name="jobs", type="database")
    factory = Counting()
    cache = BackendCache(factory)
    with pytest.raises(BrokerUnavailable), cache.lease(queue):
        raise BrokerUnavailable("down")
    assert factory.closed == factory.built
    too_large = {"handler": "log", "blob": "x" * (1024 * 1024 + 1)}
    with pytest.raises(MessageTooLarge), cache.lease(queue) as backend:
        backend.publish([OutgoingMessage.new(too_large)])
    assert len(cache) == 1, "a message refused before sending leaves the backend usable"
    cache.close()


def test_idle_backends_are_closed_after_a_while() -> None:
    queue = create_queue(name="jobs", type="database")
    other = create_queue(name="other", type="database")
    factory = Counting()
    cache = BackendCache(factory, idle_seconds=0.0)
    with cache.lease(queue) as first:
        pass
    time.sleep(0.01)
    with cache.lease(other):
        pass
    assert factory.closed == [first]
    cache.close()
