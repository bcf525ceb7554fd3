"""``manage.py create_api_token USER [--scopes publish,read] [--queues a,b] [--name N]``:
print a new API token.

The token is printed once and only its digest is stored; keep it where scripts can read it.
Without ``--scopes`` it gets every scope (what it may do is still bounded by USER's rights);
without ``--queues`` it may use all queues, present and future. Queues are found through the
token's ``queues`` relation, so this bottom-layer app names the queues app only as the model
string ``"queues.Queue"``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import ApiToken
from accounts.scopes import ALL_SCOPES, Scope


def _names(raw: str) -> list[str]:
    return [n.strip() for n in raw.split(",") if n.strip()]


class Command(BaseCommand):
    help = "Create an API token for USER, optionally limited in scopes and queues, and print it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("user", help="Username the token acts as.")
        parser.add_argument(
            "--scopes",
            default=",".join(ALL_SCOPES),
            help=f"Comma-separated, among {', '.join(ALL_SCOPES)} (default: all).",
        )
        parser.add_argument(
            "--queues", default="", help="Comma-separated queue names (default: all queues)."
        )
        parser.add_argument("--name", default="command line", help="A label for the token.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            user = get_user_model().objects.get(username=options["user"])
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user {options['user']!r}.") from None
        scopes = _names(options["scopes"])
        unknown = sorted(set(scopes) - {s.value for s in Scope})
        if unknown or not scopes:
            raise CommandError(
                f"Scopes are among {', '.join(ALL_SCOPES)}; not {', '.join(unknown) or 'none'}."
            )
        names = _names(options["queues"])
        queue_model: Any = ApiToken._meta.get_field("queues").related_model
        queues = list(queue_model._default_manager.filter(name__in=names))
        missing = sorted(set(names) - {q.name for q in queues})
        if missing:
            raise CommandError(f"No queue named {', '.join(missing)}.")
        _, raw = ApiToken.issue(
            user,
            options["name"],
            scopes=[Scope(s) for s in scopes],
            all_queues=not names,
            queues=queues,
        )
        self.stdout.write(raw)
