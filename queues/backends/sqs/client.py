"""One queue's boto3 SQS client: the queue and DLQ names, their URLs, and how botocore's
errors become ours."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)
from django.conf import settings

from queues.backends.base import QueueConfig, split_url
from queues.errors import BadConfiguration, BrokerUnavailable, LeaseLost, QueueError, QueueMissing
from queues.messages import Delivery
from queues.models import FIFO_SUFFIX, SQS_DLQ_SUFFIX

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType

MISSING = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NonExistentQueue"}
BAD_CREDENTIALS = {
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSecurity",
    "MissingAuthenticationToken",
    "IncompleteSignature",
}
LEASE = {"ReceiptHandleIsInvalid", "MessageNotInflight", "InvalidReceiptHandle"}
THROTTLED = {"ServiceUnavailable", "ThrottlingException", "RequestThrottled"}


def lease_lost(code: str, text: str) -> bool:
    """Whether SQS refused a receipt handle (it expired, or the message was received again)."""
    return code in LEASE or "receipt handle" in text.lower()


class SqsClient:
    """Names: the queue is ``<name>``; its dead-letter queue is ``<name>-dlq``
    (``<base>-dlq.fifo`` for FIFO queues: SQS allows no '.' in names except the ``.fifo``
    suffix)."""

    def __init__(self, queue: QueueConfig, connect_timeout: float, read_timeout: float) -> None:
        self.queue = queue
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._client: SQSClient | None = None
        self._urls: dict[str, str] = {}

    @property
    def name(self) -> str:
        return str(self.queue.name)

    @property
    def dlq_name(self) -> str:
        if self.queue.fifo:
            return self.name.removesuffix(FIFO_SUFFIX) + SQS_DLQ_SUFFIX + FIFO_SUFFIX
        return self.name + SQS_DLQ_SUFFIX

    @property
    def sqs(self) -> SQSClient:
        """The boto3 client, made on first use."""
        if self._client is None:
            secret = self.queue.get_secret()
            endpoint = self.queue.connection_url or None
            invalid = BadConfiguration("The queue's SQS endpoint URL is not valid; correct it.")
            if endpoint is not None and split_url(endpoint) is None:
                raise invalid
            session = boto3.session.Session()  # clients are not shared across threads
            try:
                self._client = session.client(
                    "sqs",
                    endpoint_url=endpoint,
                    region_name=self.queue.region or session.region_name or "us-east-1",
                    aws_access_key_id=self.queue.username or None,
                    aws_secret_access_key=secret or None,
                    config=Config(
                        connect_timeout=self.connect_timeout,
                        read_timeout=self.read_timeout,
                        retries={"max_attempts": 2, "mode": "standard"},
                    ),
                )
            except ValueError:  # botocore's "Invalid endpoint"
                raise invalid from None
        return self._client

    def create(self, name: str, attributes: dict[QueueAttributeNameType, str]) -> str:
        """CreateQueue (returns an existing queue's URL); the URL is kept."""
        url = self.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        self._urls[name] = url
        return url

    def url(self, name: str) -> str:
        if name not in self._urls:
            self._urls[name] = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
        return self._urls[name]

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @contextlib.contextmanager
    def errors(self, lease: Delivery | None = None) -> Iterator[None]:
        """Translate botocore's errors into ours; with ``lease``, a refused receipt handle is
        that delivery's ``LeaseLost``."""
        try:
            yield
        except QueueError:
            raise
        except NoCredentialsError as exc:
            raise BadConfiguration(f"SQS queue {self.name!r}: no AWS credentials.") from exc
        except (BotoConnectionError, HTTPClientError) as exc:
            raise BrokerUnavailable(f"SQS at {self._where()} is unreachable: {exc}") from exc
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "")
            message = error.get("Message", "") or str(exc)
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in MISSING:
                raise QueueMissing(
                    f"SQS queue {self.name!r} (or its DLQ) does not exist: provision it."
                ) from exc
            if code in BAD_CREDENTIALS:
                raise BadConfiguration(f"SQS refused the credentials: {message}") from exc
            if lease is not None and lease_lost(code, message):
                raise LeaseLost(
                    f"Message {lease.message_id}: the receipt handle is no longer valid."
                ) from exc
            if status >= 500 or code in THROTTLED:
                raise BrokerUnavailable(f"SQS failed: {code}: {message}") from exc
            raise QueueError(f"SQS refused the request: {code}: {message}") from exc
        except BotoCoreError as exc:
            raise BrokerUnavailable(f"SQS at {self._where()} failed: {exc}") from exc

    def _where(self) -> str:
        return self.queue.url or getattr(settings, "SQS_ENDPOINT_URL", "") or "AWS"
