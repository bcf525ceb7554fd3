"""Prepare the embedded default for a first look: a demo admin (and, as apps add them, demo
data). Safe to run on every start: it creates only what is missing.

`make run` passes --no-login-line: there ``wait_ready`` prints where to log in once the web
process answers, not before it has started."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandParser

from accounts.roles import Role
from jobs.demo import DEMO_SCHEDULE, install_demo_jobs_queue, install_demo_schedule
from quaymaster.config import persistent_secret
from queues.demo import DEMO_QUEUE, install_demo_queue
from zstorage.demo import install_demo_tables


def demo_admin() -> tuple[str, str]:
    """The demo admin's username and password: QUAYMASTER_ADMIN_PASSWORD, or the one generated
    once into var/admin_password."""
    password = settings.QUAYMASTER_ADMIN_PASSWORD or persistent_secret(
        settings.VAR_DIR / "admin_password", make="password"
    )
    return settings.QUAYMASTER_ADMIN_USERNAME, password


def login_line(url: str) -> str:
    username, password = demo_admin()
    return f"Quaymaster is at {url} \N{EM DASH} log in as {username!r}, password {password!r}"


class Command(BaseCommand):
    help = "Create the demo admin (and demo data) if missing, and print where to log in."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000/", help="URL to print.")
        parser.add_argument(
            "--no-login-line",
            action="store_true",
            help="Do not print where to log in (make run prints it once the web process answers).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        username, password = demo_admin()
        user, created = get_user_model().objects.get_or_create(
            username=username, defaults={"is_staff": True, "is_superuser": True}
        )
        if created or not user.check_password(password):
            user.set_password(password)
            user.save()
        user.groups.add(Group.objects.get(name=Role.ADMINS))
        if install_demo_tables():
            self.stdout.write("Demo tables created: Customers and Orders.")
        if install_demo_queue():
            self.stdout.write(
                f"Demo queue {DEMO_QUEUE!r} created: changes to Orders go to the 'log' handler."
            )
        if install_demo_jobs_queue():
            self.stdout.write(
                f"Demo job queue {settings.QUAYMASTER_JOB_QUEUE!r} created: start "
                "demo.apply_discount or demo.city_report from the Jobs page."
            )
        if install_demo_schedule():
            self.stdout.write(f"Demo schedule {DEMO_SCHEDULE!r}: the city reports every hour.")
        if not options["no_login_line"]:
            self.stdout.write(login_line(options["url"]))
