"""``manage.py rotate_queue_secrets``: re-encrypt every stored queue secret with the first key
of QUAYMASTER_ENCRYPTION_KEYS, so that older keys can then be removed from the list."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from audit import trail
from queues import crypto
from queues.errors import BadConfiguration
from queues.models import Queue


def rotate_queue_secrets() -> int:
    """Re-encrypt all secrets in one transaction (all or nothing); the number re-encrypted."""
    count = 0
    with transaction.atomic():
        for queue in Queue.objects.select_for_update().exclude(secret_ciphertext=""):
            queue.secret_ciphertext = crypto.rotate(queue.secret_ciphertext)
            queue.save(update_fields=["secret_ciphertext", "updated_at"])
            count += 1
        trail.record("queue.rotate_secrets", details={"rotated": count})
    return count


class Command(BaseCommand):
    help = "Re-encrypt every queue secret with the first QUAYMASTER_ENCRYPTION_KEYS key."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            count = rotate_queue_secrets()
        except BadConfiguration as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Re-encrypted {count} queue secret(s) with the first key.")
