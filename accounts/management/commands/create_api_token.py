"""``manage.py create_api_token USER [--queues a,b] [--name N]``: print a new API token.

The token is printed once and only its digest is stored; keep it where scripts can read it.
Queues are found through the token's ``queues`` relation, so this bottom-layer app names the
queues app only as the model string ``"queues.Queue"``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts.models import ApiToken


class Command(BaseCommand):
    help = "Create an API token for USER, optionally limited to named queues, and print it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("user", help="Username the token acts as.")
        parser.add_argument("--queues", default="", help="Comma-separated queue names.")
        parser.add_argument("--name", default="command line", help="A label for the token.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            user = get_user_model().objects.get(username=options["user"])
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user {options['user']!r}.") from None
        names = [n.strip() for n in options["queues"].split(",") if n.strip()]
        queue_model: Any = ApiToken._meta.get_field("queues").related_model
        queues = list(queue_model._default_manager.filter(name__in=names))
        missing = sorted(set(names) - {q.name for q in queues})
        if missing:
            raise CommandError(f"No queue named {', '.join(missing)}.")
        with transaction.atomic():
            token, raw = ApiToken.issue(user, options["name"])
            token.queues.set(queues)
        self.stdout.write(raw)
