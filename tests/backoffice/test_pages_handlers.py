"""The Handlers page: what this deployment registers (with its docstring, the queues and links
that use it, when a worker last ran it), the jobs, and the names used but registered nowhere."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from queues import services
from queues.models import QueueLink
from tests.zstorage.builders import make_table
from workers.models import EventKind, LifecycleEvent

pytestmark = pytest.mark.django_db


def user(name: str, *, admin: bool) -> User:
    account = User.objects.create_user(name)
    account.groups.add(Group.objects.get(name="admins" if admin else "business users"))
    return account


def test_only_admins_open_it(client: Client):
    assert client.get("/handlers/")["Location"].startswith("/login/?next=")
    client.force_login(user("bob", admin=False))
    assert client.get("/handlers/").status_code == 403


def test_it_shows_handlers_their_uses_and_the_names_nobody_registers(client: Client):
    client.force_login(user("root", admin=True))
    mail = services.create_queue(name="mail", type="database", allowed_handlers=["send_email"])
    orders = make_table("orders", "Orders")
    QueueLink.objects.create(table=orders, queue=mail, handler="log")
    QueueLink.objects.create(table=orders, queue=mail, handler="sendmail")  # a typo
    LifecycleEvent.objects.create(
        kind=EventKind.COMPLETE, queue="mail", handler="log", message_id="m-1"
    )

    page = client.get("/handlers/")
    assert page.status_code == 200
    html = page.content.decode()
    for name in ("log", "send_email", "webhook", "start_job", "jobs.instance"):
        assert f'id="handler-{name.replace(".", "")}"' in html, name
    assert "Write the message to the lifecycle log and acknowledge it" in html  # log's docstring
    assert "starts jobs: not for publishers" in html

    log_row = html.split('id="handler-log"')[1].split("</tr>")[0]
    assert "Orders → mail" in log_row
    assert "on mail" in log_row, "when and where a worker last ran it"
    email_row = html.split('id="handler-send_email"')[1].split("</tr>")[0]
    assert ">mail</a>" in email_row, "the queue that allows it by name"
    assert "not in the log" in email_row

    unknown = html.split('id="unknown-handlers"')[1]
    assert "<code>sendmail</code>" in unknown
    assert "Orders → mail" in unknown
    assert "<code>echo</code>" in html.split('id="job-table"')[1], "the built-in job"
