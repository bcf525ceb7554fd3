"""``python -m bench.polling_relay [relay options]``: ``manage.py relay`` without LISTEN.

The relay has no switch to turn LISTEN/NOTIFY off on PostgreSQL; this subclass replaces only
its wake-up with a plain sleep of ``--poll-seconds``, so the bench can measure polling alone.
Everything else (leases, claims, publishing, marking) is the project's own code.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quaymaster.settings")
    import django

    django.setup()
    from queues import relay as relay_module
    from queues.management.commands import relay as command

    class PollingRelay(relay_module.Relay):
        @contextmanager
        def _wakeups(self) -> Iterator[Callable[[float], None]]:
            yield relay_module._sleeper

    command.Relay = PollingRelay  # type: ignore[misc]
    from django.core.management import call_command

    call_command("relay", *argv)


if __name__ == "__main__":
    main(sys.argv[1:])
