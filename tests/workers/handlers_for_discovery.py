"""A handler module that only the discovery test imports (through the setting)."""

from __future__ import annotations

from typing import Any

from workers.context import Context
from workers.registry import handler


@handler("tests.discovered")
def discovered(message: dict[str, Any], ctx: Context) -> None:
    ctx.ack()
