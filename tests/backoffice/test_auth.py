from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import Client

from accounts.models import ApiToken

pytestmark = pytest.mark.django_db


def test_the_two_groups_exist_after_migrating():
    assert set(Group.objects.values_list("name", flat=True)) >= {"admins", "business users"}


def test_pages_need_login(client: Client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/")


def test_login_page_renders_and_logs_in(client: Client):
    User.objects.create_user("ada", password="correct horse battery")
    page = client.get("/login/")
    assert page.status_code == 200
    assert b"Log in to Quaymaster" in page.content

    bad = client.post("/login/", {"username": "ada", "password": "wrong"})
    assert b"did not match" in bad.content

    good = client.post("/login/", {"username": "ada", "password": "correct horse battery"})
    assert good.status_code == 302
    home = client.get("/")
    assert home.status_code == 200
    assert b"Dashboard" in home.content
    assert b"ada" in home.content


def test_logout_is_a_post_and_ends_the_session(client: Client):
    User.objects.create_user("ada", password="correct horse battery")
    client.login(username="ada", password="correct horse battery")
    response = client.post("/logout/")
    assert response.status_code == 302
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("path", ["/api/v1/me", "/api/schema/"])
def test_the_api_requires_authentication_by_session_or_token(client: Client, path: str):
    assert client.get(path).status_code == 401
    assert client.get(path, HTTP_AUTHORIZATION="Token nope").status_code == 401

    user = User.objects.create_user("ada", password="correct horse battery")
    _, raw = ApiToken.issue(user, "script")
    assert client.get(path, HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
    assert client.get(path, HTTP_AUTHORIZATION=f"Token {raw}").status_code == 200

    client.force_login(user)
    assert client.get(path).status_code == 200


def test_me_says_who_the_token_belongs_to(client: Client):
    user = User.objects.create_user("ada", password="correct horse battery")
    user.groups.add(Group.objects.get(name="business users"))
    _, raw = ApiToken.issue(user, "script")
    body = client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw}").json()
    assert body == {"username": "ada", "is_admin": False, "groups": ["business users"]}


def test_bootstrap_demo_creates_the_admin_from_the_environment(settings, capsys):
    settings.QUAYMASTER_ADMIN_USERNAME = "boss"
    settings.QUAYMASTER_ADMIN_PASSWORD = "a long demo password"

    call_command("bootstrap_demo")
    call_command("bootstrap_demo")  # a second start changes nothing

    admin = User.objects.get(username="boss")
    assert admin.is_superuser
    assert admin.is_staff
    assert admin.check_password("a long demo password")
    assert admin.groups.filter(name="admins").exists()
    assert "log in as 'boss', password 'a long demo password'" in capsys.readouterr().out


def test_bootstrap_demo_generates_a_password_once_and_keeps_it(settings, tmp_path, capsys):
    settings.VAR_DIR = tmp_path
    settings.QUAYMASTER_ADMIN_USERNAME = "admin"
    settings.QUAYMASTER_ADMIN_PASSWORD = ""

    call_command("bootstrap_demo")
    password = (tmp_path / "admin_password").read_text().strip()
    call_command("bootstrap_demo")

    assert len(password) >= 12
    assert User.objects.get(username="admin").check_password(password)
    assert capsys.readouterr().out.count(f"password {password!r}") == 2


def test_bootstrap_demo_creates_demo_tables_a_linked_queue_and_the_job_queue_once(settings, capsys):
    from queues.models import Queue, QueueLink
    from zstorage.models import Record, Table

    settings.QUAYMASTER_ADMIN_PASSWORD = "a long demo password"
    call_command("bootstrap_demo")
    call_command("bootstrap_demo")

    orders = Table.objects.get(slug="orders")
    assert Record.objects.filter(table=orders).count() == 240
    assert Record.objects.filter(table__slug="customers").count() == 60
    link = QueueLink.objects.get(table=orders)
    assert (link.queue.name, link.queue.type, link.handler) == ("order-events", "database", "log")
    jobs = Queue.objects.exclude(pk=link.queue.pk).get()
    assert (jobs.name, jobs.type) == (settings.QUAYMASTER_JOB_QUEUE, "database")
    out = capsys.readouterr().out
    assert out.count("Demo tables created") == 1
    assert out.count("Demo job queue 'jobs' created") == 1
    from jobs.models import Schedule

    [schedule] = Schedule.objects.all()
    assert (schedule.job, schedule.cron, len(schedule.params)) == ("demo.city_report",
                                                                   "0 * * * *", 6)  # fmt: skip
