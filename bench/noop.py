"""The workers scenario's handler: acknowledges and returns (``runworker --handlers-module
bench.noop``)."""

from __future__ import annotations

from typing import Any

from workers.context import Context
from workers.registry import handler


@handler("noop")
def noop(message: dict[str, Any], ctx: Context) -> None:
    ctx.ack()
