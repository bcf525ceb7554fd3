"""RabbitMQ through kombu over py-amqp (publisher confirms, manual acknowledgements).

* Queues (durable, classic), all on the default exchange: ``<name>``, ``<name>.dlq`` and
  ``<name>.retry``. ``<name>`` dead-letters (``x-dead-letter-exchange: ""``) to ``<name>.dlq``,
  so a message rejected without requeue lands there too. ``<name>.retry`` holds delayed
  retries: each message carries its own ``expiration`` and is dead-lettered back to ``<name>``
  when it expires. Per-message TTLs expire only at the head of a queue, so a long delay holds
  back shorter ones behind it.
* Publish: persistent messages (delivery_mode 2) with the AMQP ``message-id`` property set to
  our id, ``mandatory`` (an unroutable message is an error, not a silent drop) and publisher
  confirms: a batch is sent whole, then its confirms are awaited together (``confirms.py``;
  about one round trip per batch, not one per message). Only confirmed messages count as
  published: a nack, a return or a missing confirm fails those messages alone
  (``PublishFailed`` carries the confirmed ones). RabbitMQ gives a message no id of its
  own, so the API's ``broker-id`` is that ``message-id`` property.
* Priority: a queue with ``max_priority`` (1 to 10) is declared with ``x-max-priority``, and a
  message's priority is the AMQP ``priority`` property: RabbitMQ delivers the highest first
  among the messages in the queue (not those already pushed to a consumer's prefetch buffer;
  above the maximum counts as the maximum). A queue declared without it ignores priorities,
  and RabbitMQ never changes an existing queue's arguments: priorities take a new queue (a
  redeclare with other arguments is refused, PRECONDITION_FAILED, raised as
  ``BadConfiguration`` by ``provision``). Retry and dead-letter copies keep the priority.
* Size: bodies plus header names and values up to 16 MiB (RabbitMQ 4's default
  ``max_message_size``; 3.x allows 128 MiB), checked for the whole batch before sending.
* Fetch: a consumer with prefetch (``basic.qos``) and ``drain_events(timeout)``. There is no
  visibility timeout: an unacknowledged message returns to the queue when the channel closes
  (the consumer crashed or closed), or after RabbitMQ's ``consumer_timeout`` (30 min).
* Attempts: the ``quaymaster-attempt`` header, set by ``retry_later``; a redelivery after a
  crash adds one (``redelivered`` flag), but classic queues do not count repeated crashes.
* ``dead_letter`` publishes a copy to ``<name>.dlq`` with the ``quaymaster-dead-letter-reason``
  header, then acks the original (rejecting would lose the reason).

The package: ``backend.py`` (the ``Backend``), ``client.py`` (the connection, publishing,
errors), ``confirms.py`` (a batch and its confirms), ``consumer.py`` (prefetch, buffer,
settling), ``dead_letters.py`` (reading the DLQ with basic.get and requeue, sending back,
deleting, purging).
"""

from queues.backends.rabbitmq.backend import RabbitMqBackend
from queues.backends.rabbitmq.consumer import RabbitHandle

__all__ = ["RabbitHandle", "RabbitMqBackend"]
