"""The ``database`` queue type, the embedded default: messages are ``DatabaseMessage`` rows.

All of this queue's SQL lives in this package (the claim in ``claim.py``). A message is one
row with a few states:

    ready ──claim──► in_flight ──ack──► (row deleted)
      ▲                 │  ├──retry_later──► ready (available_at = now + delay)
      └──lease expired──┘  └──dead_letter──► dead (last_error = reason)

* Claim: ready rows, and in-flight rows whose lease expired (the visibility timeout), with
  ``available_at <= now``, highest ``priority`` first (a message's ``OutgoingMessage.priority``,
  0 when not given; any whole number up to 255), then oldest id. A message that is not ready
  (a delayed retry) waits its time whatever its priority. PostgreSQL locks the candidates with
  ``FOR UPDATE SKIP LOCKED`` so concurrent claimers never wait for, nor share, a row. SQLite
  has one writer at a time, and the claim is that writer for one statement. A claim is one
  ``UPDATE … RETURNING``, a batch of acks one ``DELETE … RETURNING`` (see ``claim.py``).
* A claim sets a fresh lease token; ack, retry_later, dead_letter and extend only touch the row
  while it still carries that token, so a worker whose lease expired and was re-claimed by
  another gets ``LeaseLost`` instead of acknowledging someone else's delivery.
* Like SQS's redrive policy, a row already delivered ``max_attempts`` times is moved to
  ``dead`` when it would be claimed again (a worker that keeps crashing on it cannot loop).
* Acknowledged rows are deleted at once rather than marked done: the table stays as small as
  the backlog, which keeps the claim index small and gives vacuum little to do. The dead-letter
  queue is the ``dead`` rows of the same queue.
* Dead letters are read, sent back (``ready``, attempts 0, available now) and deleted with one
  statement each; purging deletes the ``ready`` rows (in-flight rows stay with their handler).
* Publishing inserts in the caller's transaction: a rolled-back caller publishes nothing. A
  message id already in the queue is not inserted twice (its row id is returned); once acked
  (deleted), the same id can be published again.
* Wake-up (``wakeup.py``): publishing also wakes the channel ``quaymaster_queue_<id>`` when
  the transaction commits (PostgreSQL: NOTIFY; SQLite: a datagram on the listeners' Unix
  sockets) and a waiting ``fetch`` listens on it, so a worker claims a new message at once
  instead of at its next poll (every 0.2 s, still the fallback, and what finds retries whose
  delay ran out).

Times come from the application's clock (``timezone.now()``), not the database's: in a
transaction PostgreSQL's ``now()`` is the transaction's start time.
"""

from queues.backends.database.backend import DatabaseBackend
from queues.backends.database.claim import DatabaseHandle

__all__ = ["DatabaseBackend", "DatabaseHandle"]
