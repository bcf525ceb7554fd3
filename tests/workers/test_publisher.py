"""``ctx.publish``'s backends: kept per worker thread and queue, renewed for an edited queue,
closed after a failure and when the thread ends."""

from __future__ import annotations

from typing import Any

import pytest

from queues.backends import get_backend
from queues.backends.cache import BackendCache
from queues.errors import BrokerUnavailable
from queues.models import DatabaseMessage, Queue, QueueType
from workers.context import Publisher

pytestmark = pytest.mark.django_db


class Built:
    """A backend factory that remembers what it built and what was closed; ``fail`` makes
    the next publish raise."""

    def __init__(self) -> None:
        self.built: list[Any] = []
        self.closed: list[Any] = []
        self.fail = False

    def __call__(self, queue: Queue) -> Any:
        backend = get_backend(queue)
        close, publish = backend.close, backend.publish

        def closing() -> None:
            self.closed.append(backend)
            close()

        def publishing(messages: Any) -> Any:
            if self.fail:
                self.fail = False
                raise BrokerUnavailable("down")
            return publish(messages)

        backend.close = closing  # type: ignore[method-assign]
        backend.publish = publishing  # type: ignore[method-assign]
        self.built.append(backend)
        return backend


def test_one_backend_per_queue_until_the_queue_is_edited_or_the_publisher_closes() -> None:
    queue = Queue.objects.create(name="next-step", type=QueueType.DATABASE)
    factory = Built()
    publisher = Publisher(BackendCache(factory, max_idle=1))
    for n in range(3):
        publisher.publish("next-step", {"handler": "h", "n": n})
    assert len(factory.built) == 1
    queue.max_attempts = 9
    queue.save()
    publisher.publish("next-step", {"handler": "h", "n": 3})
    assert len(factory.built) == 2
    assert factory.closed == factory.built[:1], "the edited queue's old backend is closed"
    publisher.close()
    assert factory.closed == factory.built
    assert DatabaseMessage.objects.filter(queue=queue).count() == 4


def test_a_backend_whose_publish_failed_is_closed_and_the_next_publish_gets_a_fresh_one() -> None:
    Queue.objects.create(name="next-step", type=QueueType.DATABASE)
    factory = Built()
    publisher = Publisher(BackendCache(factory, max_idle=1))
    publisher.publish("next-step", {"handler": "h"})
    factory.fail = True
    with pytest.raises(BrokerUnavailable):
        publisher.publish("next-step", {"handler": "h"})
    assert factory.closed == factory.built
    publisher.publish("next-step", {"handler": "h"})
    assert len(factory.built) == 2
    publisher.close()
