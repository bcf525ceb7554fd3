"""Amazon SQS (or a compatible server such as ElasticMQ) through boto3.

* Names: the queue is ``<name>``; its dead-letter queue is ``<name>-dlq`` (``<base>-dlq.fifo``
  for FIFO queues: SQS allows no '.' in names except the ``.fifo`` suffix). A redrive policy
  moves a message there after ``max_attempts`` receives (``maxReceiveCount``).
* Size: SQS counts the body plus every message attribute's name, type and value; the limit
  is 1 MiB (1,048,576 bytes) per message and per SendMessageBatch request (AWS raised it from
  256 KiB in August 2025; ElasticMQ's strict limits use 1 MiB too). Batches are cut at 10
  entries or 1 MiB, whichever comes first.
* Our message id travels as the ``quaymaster-message-id`` attribute and, on FIFO queues, as
  the ``MessageDeduplicationId`` (a re-sent message inside SQS's 5-minute window is dropped).
  ``MessageGroupId`` is the ordering key (``default`` without one).
* Headers are message attributes: at most 6 (SQS allows 10; our id, the body encoding, and a
  dead letter's reason and attempt take the others). A dead letter's reason is cut at 1 KiB.
* Bodies are text: bytes that are not UTF-8 travel base64-encoded, flagged by the
  ``quaymaster-encoding`` attribute, and are decoded on fetch.
* Retry and lease extension are ``ChangeMessageVisibility`` (so the receive count that redrive
  relies on keeps counting); the attempt number is ``ApproximateReceiveCount``.
* Priority: none. A FIFO queue delivers in order per message group, a standard one in no
  promised order; ``OutgoingMessage.priority`` is ignored (urgent work takes its own queue).

The package: ``backend.py`` (the ``Backend``), ``client.py`` (boto3, names, errors),
``encoding.py`` (bodies, attributes, sizes), ``dead_letters.py`` (reading the DLQ without
losing a message, since SQS has no peek; sending back, deleting, purging).
"""

from queues.backends.sqs.backend import SqsBackend, SqsHandle

__all__ = ["SqsBackend", "SqsHandle"]
