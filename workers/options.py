"""How one worker runs: concurrency, drain, polling, retry backoff, heartbeat, fetch errors.

A module of its own (below ``workers.runtime`` and ``workers.middleware``) because middleware
reads the options through its ``WorkerView`` and must not import the runtime.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class WorkerOptions:
    concurrency: int = 10
    #: SIGTERM: how long in-flight handlers may take to finish before their messages are
    #: given back.
    drain_seconds: float = 30.0
    #: How long a fetch waits for messages when nothing is in flight (SQS long polling uses
    #: the whole seconds of it, up to 20).
    poll_seconds: float = 1.0
    #: While handlers run: how often to look for more messages when a fetch found none.
    busy_poll_seconds: float = 0.2
    #: Exponential backoff of retries: attempt n waits about base * 2**(n-1), at most max.
    retry_base_delay: float = 2.0
    retry_max_delay: float = 300.0
    heartbeat_seconds: float | None = None
    #: A failing fetch (engine down) is tried again after 0.5 s, 1 s, 2 s… up to this.
    max_error_backoff: float = 30.0
    #: Per-key order (``workers.ordering``): None follows the queue's ``ordered_by_key``.
    ordered_by_key: bool | None = None
    #: Deliveries that may wait for their key beyond the threads (None: the concurrency).
    max_held_back: int | None = None
    #: A key waiting for its retried message lets its later messages run this long after
    #: the retry was due (the retried message went to another worker process).
    key_retry_grace: float = 10.0

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1.")
        if self.drain_seconds < 0 or self.poll_seconds < 0 or self.busy_poll_seconds < 0:
            raise ValueError("Durations cannot be negative.")
