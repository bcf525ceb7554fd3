"""``manage.py rotate_webhook_secrets``: re-encrypt every stored webhook endpoint secret with the
first key of QUAYMASTER_ENCRYPTION_KEYS (run it beside ``rotate_queue_secrets`` before an old
key leaves the list)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from queues.errors import BadConfiguration
from workers.endpoints import rotate_endpoint_secrets


class Command(BaseCommand):
    help = "Re-encrypt every webhook endpoint secret with the first QUAYMASTER_ENCRYPTION_KEYS key."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            count = rotate_endpoint_secrets()
        except BadConfiguration as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Re-encrypted {count} webhook endpoint secret(s) with the first key.")
