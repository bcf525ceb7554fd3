"""What a worker reads from a delivery: a JSON object that names its handler."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from queues.messages import Delivery
from workers.errors import MalformedMessage

HANDLER_KEY = "handler"


@dataclass(frozen=True)
class Message:
    body: dict[str, Any]
    handler: str


def decode(delivery: Delivery) -> Message:
    """The delivery's body as a message, or MalformedMessage saying what is wrong with it."""
    try:
        body = json.loads(delivery.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedMessage(f"The body is not JSON: {exc}.") from exc
    return Message(body, handler_of(body))


def handler_of(body: object) -> str:
    if not isinstance(body, dict):
        raise MalformedMessage(f"The body is JSON but not an object (it is {_kind(body)}).")
    name = body.get(HANDLER_KEY)
    if not isinstance(name, str) or not name.strip():
        raise MalformedMessage(
            f"The body has no string {HANDLER_KEY!r} key naming the handler to run."
        )
    return name


def _kind(value: object) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )
