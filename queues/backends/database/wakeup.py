"""How a waiting fetch of a database queue learns of a new message.

Publishing wakes the queue's channel ``quaymaster_queue_<id>`` when its transaction commits
(PostgreSQL: a NOTIFY; SQLite: a datagram to the listeners' Unix sockets, see
``queues.dialects.sqlite``) and a waiting fetch listens on it, so a worker claims a new
message at once instead of at its next poll. Polling stays the fallback (a broken or missing
listener), and what finds retries whose delay ran out.
"""

from __future__ import annotations

import contextlib
import threading

from queues.dialects import Listener, dialect


def channel(queue_id: int) -> str:
    """The NOTIFY channel of a queue (PostgreSQL)."""
    return f"quaymaster_queue_{queue_id}"


def notify(queue_id: int) -> None:
    """Wake the queue's waiting fetches when the caller's transaction commits."""
    dialect().notify(channel(queue_id))


class Wakeup:
    """One consumer's wait for its queue: a wake-up of its channel, or a timeout."""

    def __init__(self, queue_id: int) -> None:
        self.channel = channel(queue_id)
        self.closed = threading.Event()
        self._listener: Listener | None = None  # the dialect's session on channel

    @property
    def listening(self) -> bool:
        return self._listener is not None

    def listen(self) -> None:
        """Start listening (before the first claim: a wake-up after it is not missed)."""
        if self._listener is not None or self.closed.is_set():
            return
        # psycopg.Error (PostgreSQL unreachable), OSError (no socket): polling still finds
        # the messages.
        with contextlib.suppress(Exception):
            self._listener = dialect().listen(self.channel)

    def wait(self, seconds: float) -> None:
        """Until a wake-up for this queue or ``seconds``, whichever comes first."""
        listener = self._listener
        if listener is None:
            self.closed.wait(seconds)
            return
        try:
            listener.wait(seconds)
        except Exception:  # the listener broke (or was closed): poll from now on
            self._listener = None
            with contextlib.suppress(Exception):
                listener.close()
            self.closed.wait(seconds)

    def close(self) -> None:
        self.closed.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(Exception):
                listener.close()
