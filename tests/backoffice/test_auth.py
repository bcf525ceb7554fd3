from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from axes.models import AccessAttempt
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.db import connections
from django.test import AsyncClient, Client
from django.utils import timezone

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
    assert client.login(username="ada", password="correct horse battery")
    assert client.get("/").status_code == 200
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
    assert {key: body[key] for key in ("username", "is_admin", "groups")} == {
        "username": "ada",
        "is_admin": False,
        "groups": ["business users"],
    }
    assert body["token"]["name"] == "script"


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


# Login brute force: django-axes counts failures per username and client address together.

ADMIN_LOGIN = "/django-admin/login/"
PASSWORD = "correct horse battery"


def try_login(
    client: Client,
    password: str,
    *,
    username: str = "ada",
    ip: str = "10.0.0.1",
    path: str = "/login/",
) -> Any:
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=ip)


def minute_after(moment: dt.datetime) -> dt.datetime:
    return moment.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)


def fail(client: Client, times: int, **kwargs: Any) -> list[Any]:
    return [try_login(client, "wrong", **kwargs) for _ in range(times)]


def test_failed_logins_lock_the_username_from_that_address_with_a_page_saying_when(
    client: Client, settings: Any
):
    User.objects.create_user("ada", password=PASSWORD)
    before = fail(client, settings.AXES_FAILURE_LIMIT - 1)
    assert [r.status_code for r in before] == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    assert all(b"did not match" in r.content for r in before)

    before = timezone.now()
    locked = try_login(client, "wrong")
    after = timezone.now()
    assert locked.status_code == 429
    body = locked.content.decode()
    assert "Log in to Quaymaster" in body  # the login page itself, with its form
    assert 'name="password"' in body
    assert "Too many failed logins for this username from your address" in body
    # The minute the lock ends (the cool-off after this failure), rounded up, in UTC here.
    ends = {minute_after(t + settings.AXES_COOLOFF_TIME) for t in (before, after)}
    assert any(f"blocked until {end:%H:%M} UTC (in 15\xa0minutes)" in body for end in ends)
    assert 890 <= int(locked["Retry-After"]) <= 900

    # The right password is refused as well while the lock lasts, and leaves no session.
    right = try_login(client, PASSWORD)
    assert right.status_code == 429
    assert "Too many failed logins" in right.content.decode()
    assert client.get("/").status_code == 302


def test_the_lock_holds_only_for_that_username_and_that_address(client: Client, settings: Any):
    User.objects.create_user("ada", password=PASSWORD)
    User.objects.create_user("bob", password=PASSWORD)
    fail(client, settings.AXES_FAILURE_LIMIT)
    assert try_login(client, PASSWORD).status_code == 429

    from_elsewhere = Client()
    assert try_login(from_elsewhere, PASSWORD, ip="10.0.0.2").status_code == 302
    other_user = Client()
    assert try_login(other_user, PASSWORD, username="bob").status_code == 302
    assert other_user.get("/").status_code == 200


def test_a_successful_login_resets_the_count(client: Client, settings: Any):
    User.objects.create_user("ada", password=PASSWORD)
    limit = settings.AXES_FAILURE_LIMIT
    fail(client, limit - 1)
    assert try_login(client, PASSWORD).status_code == 302
    client.post("/logout/")

    # Counting starts again: as many failures as before leave the account open.
    assert [r.status_code for r in fail(client, limit - 1)] == [200] * (limit - 1)
    assert try_login(client, PASSWORD).status_code == 302


def test_the_lock_ends_after_the_cool_off(client: Client, settings: Any):
    User.objects.create_user("ada", password=PASSWORD)
    fail(client, settings.AXES_FAILURE_LIMIT)
    assert try_login(client, PASSWORD).status_code == 429

    # Refused tries while locked do not extend the lock: once the cool-off after the last
    # counted failure has passed, the right password logs in.
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME)
    assert try_login(client, PASSWORD).status_code == 302


def test_the_limit_and_cool_off_come_from_settings(client: Client, settings: Any):
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = dt.timedelta(minutes=3)
    User.objects.create_user("ada", password=PASSWORD)
    assert [r.status_code for r in fail(client, 2)] == [200, 429]
    locked = try_login(client, PASSWORD)
    assert "in 3\xa0minutes" in locked.content.decode()
    assert 170 <= int(locked["Retry-After"]) <= 180


def test_the_admin_login_is_locked_too_and_shares_the_count(client: Client, settings: Any):
    User.objects.create_superuser("root", password=PASSWORD)
    fail(client, settings.AXES_FAILURE_LIMIT - 1, username="root", path=ADMIN_LOGIN)
    locked = try_login(client, "wrong", username="root", path=ADMIN_LOGIN)
    assert locked.status_code == 429
    body = locked.content.decode()
    assert 'id="login-form"' in body  # the admin's own login page, with its form
    assert 'class="errornote"' in body
    assert "Too many failed logins for this username from your address" in body
    assert try_login(client, PASSWORD, username="root", path=ADMIN_LOGIN).status_code == 429
    # One count for both pages: the back-office login refuses the pair as well.
    assert try_login(client, PASSWORD, username="root").status_code == 429
    assert (
        try_login(Client(), PASSWORD, username="root", ip="10.0.0.9", path=ADMIN_LOGIN).status_code
        == 302
    )


def test_a_proxy_header_names_the_client_only_when_configured(client: Client, settings: Any):
    User.objects.create_user("ada", password=PASSWORD)
    limit = settings.AXES_FAILURE_LIMIT

    # Not configured: a client's X-Forwarded-For is ignored, so changing it does not escape.
    for n in range(limit):
        client.post(
            "/login/", {"username": "ada", "password": "wrong"}, HTTP_X_FORWARDED_FOR=f"1.2.3.{n}"
        )
    assert try_login(client, PASSWORD, ip="127.0.0.1").status_code == 429

    # Configured: the address the proxy appended (the last) is the client's; REMOTE_ADDR is the
    # proxy, shared by everyone.
    settings.QUAYMASTER_CLIENT_IP_META_KEY = "HTTP_X_FORWARDED_FOR"
    behind = {"REMOTE_ADDR": "10.9.9.9"}
    for _ in range(limit):
        client.post(
            "/login/", {"username": "ada", "password": "wrong"},
            HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.5", **behind,
        )  # fmt: skip
    refused = client.post(
        "/login/", {"username": "ada", "password": PASSWORD},
        HTTP_X_FORWARDED_FOR="203.0.113.5", **behind,
    )  # fmt: skip
    assert refused.status_code == 429
    other = Client().post(
        "/login/", {"username": "ada", "password": PASSWORD},
        HTTP_X_FORWARDED_FOR="203.0.113.5, 198.51.100.7", **behind,
    )  # fmt: skip
    assert other.status_code == 302


def test_axes_reset_unlocks(client: Client, settings: Any):
    User.objects.create_user("ada", password=PASSWORD)
    fail(client, settings.AXES_FAILURE_LIMIT)
    assert try_login(client, PASSWORD).status_code == 429
    call_command("axes_reset")
    assert try_login(client, PASSWORD).status_code == 302


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_USER_AGENT": "x" * 5000, "HTTP_ACCEPT": "y" * 5000},
        {"HTTP_USER_AGENT": "bad\x00agent"},
        {"REMOTE_ADDR": "not-an-address"},
    ],
)
def test_odd_requests_to_the_login_get_an_answer_not_an_error(
    client: Client, settings: Any, headers: dict[str, str]
):
    User.objects.create_user("ada", password=PASSWORD)
    long_name = client.post("/login/", {"username": "a" * 300, "password": "x"}, **headers)
    assert long_name.status_code == 200
    answers = [
        client.post("/login/", {"username": "ada", "password": "wrong"}, **headers)
        for _ in range(settings.AXES_FAILURE_LIMIT)
    ]
    assert [r.status_code for r in answers][-1] == 429
    assert (
        client.post("/login/", {"username": "ada", "password": PASSWORD}, **headers).status_code
        == 429
    )


@pytest.mark.django_db(transaction=True)
async def test_the_lockout_page_is_served_under_asgi_too(settings: Any):
    """The streams process (uvicorn) serves every URL, /login/ included."""
    await User.objects.acreate_user("ada", password=PASSWORD)
    client = AsyncClient()
    answers = [
        await client.post("/login/", {"username": "ada", "password": "wrong"})
        for _ in range(settings.AXES_FAILURE_LIMIT)
    ]
    assert [r.status_code for r in answers][:-1] == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    locked = answers[-1]
    assert locked.status_code == 429
    body = locked.content.decode()
    assert "Too many failed logins for this username from your address" in body
    assert 'value="ada"' in body  # the form again, with the name that was tried
    right = await client.post("/login/", {"username": "ada", "password": PASSWORD})
    assert right.status_code == 429
    # The async ORM ran in a worker thread: close its connection so the test database drops.
    await sync_to_async(connections.close_all)()


def test_the_attempts_table_stays_small(client: Client, settings: Any):
    User.objects.create_user("ada", password=PASSWORD)
    limit = settings.AXES_FAILURE_LIMIT
    fail(client, limit + 20)  # 20 tries while locked: refused, not counted
    [attempt] = AccessAttempt.objects.all()
    assert attempt.failures_since_start == limit
    assert attempt.post_data.count("password=****") == limit  # masked, one line per failure
    assert "wrong" not in attempt.post_data

    # Rows older than the cool-off are deleted at the next login attempt, anyone's.
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME)
    try_login(Client(), "wrong", username="bob", ip="10.0.0.7")
    assert list(AccessAttempt.objects.values_list("username", flat=True)) == ["bob"]
