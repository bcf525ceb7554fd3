"""How a message travels on SQS: text bodies, message attributes, and the size SQS counts.

* SQS counts the body plus every message attribute's name, type and value.
* Our message id travels as the ``quaymaster-message-id`` attribute; the headers are message
  attributes: at most 6 (SQS allows 10; our id, the body encoding, and a dead letter's reason
  and attempt take the others).
* Bodies are text: bytes that are not UTF-8 travel base64-encoded, flagged by the
  ``quaymaster-encoding`` attribute, and are decoded on the way back.
* ``MessageGroupId`` (FIFO) is the ordering key, ``default`` without one.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from queues.errors import BadMessage
from queues.messages import HEADER_MESSAGE_ID, OutgoingMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

HEADER_ENCODING = "quaymaster-encoding"
MAX_ATTRIBUTES = 10
#: Our own attributes on a dead letter: message id, encoding, reason, attempt.
RESERVED_ATTRIBUTES = 4
DEFAULT_GROUP = "default"
_GROUP_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
#: Characters an SQS body cannot carry as they are (control characters but tab, newline and
#: carriage return; U+FFFE, U+FFFF). One regex search: a generator over each character was a
#: quarter of the relay's publishing time.
_NOT_SQS_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

Encoded = tuple[str, "dict[str, MessageAttributeValueTypeDef]", int]


def text_body(raw: bytes) -> tuple[str, bool]:
    """SQS bodies are Unicode text without most control characters: else send base64."""
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode(), True
    if _NOT_SQS_TEXT.search(text):
        return base64.b64encode(raw).decode(), True
    return text, False


def body_of(message: Mapping[str, Any], values: Mapping[str, str]) -> bytes:
    """A received message's body as bytes (decoded when it travelled base64)."""
    body = message.get("Body", "")
    return base64.b64decode(body) if values.get(HEADER_ENCODING) == "base64" else body.encode()


def attribute_values(message: Mapping[str, Any]) -> dict[str, str]:
    """A received message's attributes as text."""
    return {
        name: a.get("StringValue", "") for name, a in message.get("MessageAttributes", {}).items()
    }


def group_id(ordering_key: str | None) -> str:
    """The ordering key as a MessageGroupId (128 printable ASCII at most; hashed otherwise)."""
    if not ordering_key:
        return DEFAULT_GROUP
    if _GROUP_ID.match(ordering_key):
        return ordering_key
    return hashlib.sha256(ordering_key.encode()).hexdigest()


def attributes(
    message_id: str, headers: Mapping[str, str]
) -> dict[str, MessageAttributeValueTypeDef]:
    """Our message id and the headers as String attributes."""
    result: dict[str, MessageAttributeValueTypeDef] = {
        HEADER_MESSAGE_ID: {"DataType": "String", "StringValue": message_id}
    }
    for name, value in headers.items():
        result[name] = {"DataType": "String", "StringValue": value}
    return result


def encode(message: OutgoingMessage) -> Encoded:
    """(body text, attributes, size as SQS counts it)."""
    if len(message.headers) + RESERVED_ATTRIBUTES > MAX_ATTRIBUTES:
        raise BadMessage(
            f"Message {message.message_id}: SQS carries at most "
            f"{MAX_ATTRIBUTES - RESERVED_ATTRIBUTES} headers (10 attributes, 4 are ours)."
        )
    body, encoded = text_body(message.body_bytes())
    result = attributes(message.message_id, message.headers)
    if encoded:
        result[HEADER_ENCODING] = {"DataType": "String", "StringValue": "base64"}
    size = len(body.encode()) + sum(
        len(name.encode()) + len(a["DataType"]) + len(a.get("StringValue", "").encode())
        for name, a in result.items()
    )
    return body, result, size
