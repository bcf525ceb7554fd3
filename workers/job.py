"""One delivery on its way through a worker, and what the handler decided about it."""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from queues.messages import Delivery

if TYPE_CHECKING:
    from workers.message import Message


class Handler(Protocol):
    """The handler a job runs: a ``workers.registry.Handler`` (a Protocol here, as the registry
    imports the context, which imports this module)."""

    @property
    def name(self) -> str: ...

    def __call__(self, message: dict[str, Any], ctx: Any) -> Any: ...


class Settlement(enum.StrEnum):
    """What the consumer thread does with a delivery once its handler is done."""

    ACK = "ack"
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"
    #: The handler returned without settling: the message must be delivered again.
    NOT_ACKED = "not_acked"
    #: Shutdown: the handler did not run (or did not finish in time); give the message back.
    RELEASE = "release"


@dataclass(frozen=True)
class Outcome:
    settlement: Settlement
    delay: float | None = None  # RETRY: seconds (None: the retry middleware's backoff)
    reason: str = ""  # DEAD_LETTER: why; RETRY: the error, for the log

    @classmethod
    def ack(cls) -> Outcome:
        return cls(Settlement.ACK)

    @classmethod
    def retry(cls, delay: float | None = None, reason: str = "") -> Outcome:
        return cls(Settlement.RETRY, delay, reason)

    @classmethod
    def dead_letter(cls, reason: str) -> Outcome:
        return cls(Settlement.DEAD_LETTER, reason=reason)


@dataclass(eq=False)
class Job:
    """Created by the consumer thread at fetch, run by a worker thread, settled by the
    consumer thread. ``started``/``cancelled`` decide, under a lock, whether a worker thread
    runs it or shutdown gives it back unrun."""

    seq: int
    delivery: Delivery
    fetched_at: float  # time.monotonic()
    lease_until: float | None = None  # monotonic; None: the engine has no leases
    message: Message | None = None
    handler: Handler | None = None
    outcome: Outcome | None = None
    exception: BaseException | None = None
    traceback: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    lease_lost: bool = False
    #: The batch this job was gathered into (``workers.batching``); None: run on its own.
    batch: int | None = None
    #: What the consumer thread did (set when settling), and a note for the log.
    settlement: Settlement | None = None
    note: str = ""
    _state_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _started: bool = False
    _cancelled: bool = False

    @property
    def message_id(self) -> str:
        return self.delivery.message_id

    @property
    def attempt(self) -> int:
        return self.delivery.attempt

    @property
    def handler_name(self) -> str:
        if self.handler is not None:
            return self.handler.name
        return self.message.handler if self.message is not None else ""

    @property
    def duration_ms(self) -> int | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0, round((self.finished_at - self.started_at) * 1000))

    def claim(self) -> bool:
        """A worker thread takes the job; False if shutdown gave it back first."""
        with self._state_lock:
            if self._cancelled:
                return False
            self._started = True
            return True

    def cancel(self) -> bool:
        """Shutdown takes the job back; False if a worker thread already runs it."""
        with self._state_lock:
            if self._started:
                return False
            self._cancelled = True
            return True
