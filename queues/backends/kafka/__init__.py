"""Apache Kafka through confluent-kafka (librdkafka), never kombu's Kafka transport.

* Topics: ``<name>`` (``partitions`` partitions), ``<name>.retry`` (same partitions) and
  ``<name>.dlq``, replication ``min(3, brokers)``. The consumer group is
  ``quaymaster.<name>`` and reads ``<name>`` and ``<name>.retry``.
* Publish: an idempotent producer (``enable.idempotence``, ``acks=all``), the ordering key as
  the record key (``murmur2_random``, the Java client's partitioner), our message id in the
  ``quaymaster-message-id`` header. Every delivery report is checked. A failed batch raises
  ``BrokerUnavailable``, and some of its messages may already be written: publishing is at
  least once, which the outbox tolerates (it sends the whole batch again).
* Size: librdkafka refuses records over ``message.max.bytes`` (1,000,000) including ~100 bytes
  of framing, and the broker's default limit is 1,048,588. We count value + key + header names
  and values and accept at most 999,000 bytes, checked for the whole batch before sending.
* Acks commit explicit offsets, never "everything fetched": per partition, the lowest offset
  still unacknowledged (or the last fetched + 1 when none is), so a crash never skips a message
  that was fetched but not acknowledged. Deliveries are at least once. ``ack`` commits
  synchronously (committed when it returns); ``ack_many``, which workers use, commits
  asynchronously with at most one commit in flight: positions acknowledged while one is in
  flight are merged and sent when its answer comes (served by the next ``fetch``). A failed
  commit is logged; a later commit or ``close`` (which commits the last positions
  synchronously) covers it; at worst messages are delivered again. (Pipelining a commit per
  batch made Kafka 4.1's group coordinator stall a request for the whole session timeout.)
* ``retry_later`` produces the message to ``<name>.retry`` with ``quaymaster-attempt`` + 1 and
  ``quaymaster-not-before`` (epoch ms), then acks the original. ``fetch`` holds a retry
  partition whose head is not due yet (pause + seek back) and resumes it when due. Retries
  with different delays share a partition, so a long delay holds back the shorter ones behind
  it (head-of-line), as with any single delay topic.
* ``dead_letter`` produces to ``<name>.dlq`` with ``quaymaster-dead-letter-reason`` (plus the
  origin topic, partition and offset), then acks.
* Kafka has no visibility timeout: a message fetched and never acknowledged is delivered again
  when its partition is re-read from the committed offset (consumer restart or rebalance), and
  the attempt number then restarts from the header (1 for a message never retried).
* Priority: none. A partition is a log read in offset order; ``OutgoingMessage.priority`` is
  ignored (urgent work takes its own topic).
* ``username`` and the secret, when set, are SASL PLAIN over TLS (``SASL_SSL``).

The package: ``backend.py`` (the ``Backend``), ``client.py`` (names, configuration, errors),
``producer.py``, ``consumer.py`` with ``offsets.py`` (the commit positions, pure logic),
``admin.py`` (topics, stats, purge), ``dead_letters.py`` with ``settled.py`` (how a log keeps
which dead letters were sent back or deleted: the redrive group).
"""

from queues.backends.kafka.backend import KafkaBackend
from queues.backends.kafka.offsets import KafkaHandle, OffsetTracker

__all__ = ["KafkaBackend", "KafkaHandle", "OffsetTracker"]
