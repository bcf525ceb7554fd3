"""``python -m bench.peer_loop COUNT ENGINE:NAME:ID ...``: the relay's peer as a process of its
own (for the memory scenario) — publish COUNT event bodies to each queue with the engine's
client in batches of 500, no Django, print ``done``, then wait until stdin closes."""

from __future__ import annotations

import sys

from bench.clients import encode, publisher_for
from bench.queues import chunks
from bench.scenarios.relay import BATCH, event_body


def main(argv: list[str]) -> None:
    count, specs = int(argv[0]), argv[1:]
    print("ready", flush=True)
    sys.stdin.readline()  # the parent says go once it samples memory
    for spec in specs:
        engine, name, queue_id = spec.split(":")
        bodies = [encode(event_body(i, int(queue_id))) for i in range(count)]
        with publisher_for(engine, name, int(queue_id)) as peer:
            for chunk in chunks(bodies, BATCH):
                peer.publish(chunk)
    print("done", flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main(sys.argv[1:])
