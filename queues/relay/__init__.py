"""The outbox relay (``manage.py relay``): ``loop.Relay`` drives a lease store
(``leases.py``) and an outbox-row store (``rows.py``) and reports (``reporting.py``); the
semantics (lease, order, at-least-once, back-off, LISTEN wake-up) are stated in ``loop.py``."""

from queues.relay.leases import LeaseStore
from queues.relay.loop import Relay
from queues.relay.reporting import RelayCounters, outbox_stats
from queues.relay.rows import OutboxRows, PendingRow

__all__ = ["LeaseStore", "OutboxRows", "PendingRow", "Relay", "RelayCounters", "outbox_stats"]
