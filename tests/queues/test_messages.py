"""Outgoing messages as the relay builds them: JSON text sent as it is, and messages read back
from the outbox built without checking their id again."""

from __future__ import annotations

import uuid

import pytest

from queues.errors import BadMessage
from queues.messages import JsonText, OutgoingMessage


def test_json_text_is_a_json_body_sent_unchanged() -> None:
    text = JsonText(b'{"handler": "h", "n": 1}')
    message = OutgoingMessage(str(uuid.uuid4()), text)
    assert message.is_json
    assert message.body_bytes() is text
    assert not OutgoingMessage(str(uuid.uuid4()), b'{"handler": "h"}').is_json, (
        "plain bytes stay binary"
    )


def test_a_stored_message_equals_one_built_and_checked() -> None:
    message_id = str(uuid.uuid4())
    stored = OutgoingMessage.stored(message_id, {"handler": "h"}, "orders:1")
    assert stored == OutgoingMessage(message_id, {"handler": "h"}, "orders:1")
    assert stored.headers == {}
    with pytest.raises(BadMessage):
        OutgoingMessage("not-a-uuid", {"handler": "h"})
