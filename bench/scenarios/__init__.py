"""One module per scenario; each exposes ``NAME``, ``TITLE`` and ``run(bench, options)``."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

#: Scenario name -> module, in the order a full run takes them.
SCENARIOS: dict[str, str] = {
    "publish-api": "bench.scenarios.publish_api",
    "record-write": "bench.scenarios.record_write",
    "outbox-write": "bench.scenarios.outbox_write",
    "relay": "bench.scenarios.relay",
    "workers": "bench.scenarios.workers",
    "end-to-end": "bench.scenarios.end_to_end",
    "jobs": "bench.scenarios.jobs",
    "scale": "bench.scenarios.scale",
    "failover": "bench.scenarios.failover",
    "tracing": "bench.scenarios.tracing",
    "memory": "bench.scenarios.memory",
}


def load(name: str) -> ModuleType:
    return import_module(SCENARIOS[name])
