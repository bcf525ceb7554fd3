"""The webhook endpoint pages: admins only, the signing secret never rendered (only "set" or "not
set"), a blank secret keeps it, a checkbox removes it, a new host removes it unless typed again,
and a URL written with a non-public IP address refused with the reason."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from queues import services
from queues.models import Queue
from tests.workers.webhook_receiver import serve
from workers.endpoints import SIGNATURE_HEADER, create_endpoint, sign
from workers.models import WebhookEndpoint

pytestmark = pytest.mark.django_db

SECRET = "whsec-Never-Shown-42"
HTMX = {"HTTP_HX_REQUEST": "true"}


def logged_in(client: Client, name: str = "root", admin: bool = True) -> User:
    user = User.objects.create_user(name)
    user.groups.add(Group.objects.get(name="admins" if admin else "business users"))
    client.force_login(user)
    return user


@pytest.fixture
def admin(client: Client) -> Client:
    logged_in(client)
    return client


@pytest.fixture
def orders() -> Queue:
    return services.create_queue(name="orders", type="database")


@pytest.fixture
def crm(orders: Queue) -> WebhookEndpoint:
    return create_endpoint(
        name="crm", url="https://crm.example.com/hooks", secret=SECRET, queues=[orders]
    )


def form(**values: Any) -> dict[str, Any]:
    return {"name": "crm", "url": "https://crm.example.com/hooks", "timeout": "10", **values}


def test_business_users_get_403_and_visitors_the_login(
    client: Client, crm: WebhookEndpoint
) -> None:
    paths = ["/webhooks/", "/webhooks/new", f"/webhooks/{crm.pk}/"]
    for path in paths:
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/?next=")
    logged_in(client, "bea", admin=False)
    for path in paths:
        assert client.get(path).status_code == 403
    assert client.post(f"/webhooks/{crm.pk}/", form(url="https://evil.example/")).status_code == 403
    assert client.post(f"/webhooks/{crm.pk}/delete").status_code == 403
    assert WebhookEndpoint.objects.get().url == "https://crm.example.com/hooks"
    assert b"/webhooks/" not in client.get("/").content, "no nav link for business users"


def test_an_admin_creates_an_endpoint_and_the_secret_is_never_shown(
    admin: Client, orders: Queue
) -> None:
    response = admin.post(
        "/webhooks/new", form(secret=SECRET, queues=[orders.pk], enabled="on"), follow=True
    )
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.url, endpoint.timeout, endpoint.enabled) == (
        "https://crm.example.com/hooks",
        10,
        True,
    )
    assert list(endpoint.queues.all()) == [orders]
    assert endpoint.get_secret() == SECRET
    page = response.content.decode()
    assert "Webhook endpoint crm created" in page
    assert "crm.example.com/hooks" in page
    assert "orders" in page
    assert ">set<" in page

    edit = admin.get(f"/webhooks/{endpoint.pk}/").content.decode()
    for html in (page, edit):
        assert SECRET not in html
        assert SECRET[:6] not in html
        assert SECRET[-4:] not in html
    assert 'id="secret-state">set<' in edit
    assert 'name="clear_secret"' in edit


def test_a_blank_secret_keeps_it_and_the_checkbox_removes_it(
    admin: Client, crm: WebhookEndpoint, orders: Queue
) -> None:
    response = admin.post(f"/webhooks/{crm.pk}/", form(timeout="25", queues=[orders.pk]))
    assert response.status_code == 302
    crm.refresh_from_db()
    assert (crm.timeout, crm.get_secret()) == (25, SECRET)

    admin.post(f"/webhooks/{crm.pk}/", form(clear_secret="on", queues=[orders.pk]))
    crm.refresh_from_db()
    assert not crm.has_secret
    assert "not set" in admin.get("/webhooks/").content.decode()


def test_moving_the_url_to_another_host_removes_the_secret_and_says_so(
    admin: Client, crm: WebhookEndpoint
) -> None:
    response = admin.post(
        f"/webhooks/{crm.pk}/", form(url="https://listener.example.net/"), follow=True
    )
    assert "the stored signing secret was removed" in response.content.decode()
    crm.refresh_from_db()
    assert crm.url == "https://listener.example.net/"
    assert not crm.has_secret
    assert list(crm.queues.all()) == [], "unticked queues are removed too"

    admin.post(f"/webhooks/{crm.pk}/", form(url="https://crm.example.com/", secret="again"))
    crm.refresh_from_db()
    assert crm.get_secret() == "again"


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://127.0.0.1:8000/hook", "127.0.0.1 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://[::ffff:10.0.0.1]/", "is a private address"),
        ("http://192.168.1.20/", "192.168.1.20 is a private address"),
        ("ftp://crm.example.com/", "must start with http:// or https://"),
        ("https://user:pw@crm.example.com/", "user name or password"),
    ],
)
def test_a_url_the_handler_would_refuse_is_refused_by_the_form(
    admin: Client, url: str, error: str
) -> None:
    response = admin.post("/webhooks/new", form(url=url))
    assert response.status_code == 422
    page = response.content.decode()
    assert error in page
    if "address" in error:
        assert "checked at each send, after DNS" in page
    assert not WebhookEndpoint.objects.exists()


def test_an_allowed_network_may_be_entered_as_an_ip(admin: Client, settings: Any) -> None:
    settings.QUAYMASTER_WEBHOOK_ALLOWED_NETWORKS = ["10.20.0.0/16"]
    assert admin.post("/webhooks/new", form(url="http://10.20.3.4:8080/in")).status_code == 302
    assert WebhookEndpoint.objects.get().url == "http://10.20.3.4:8080/in"


@pytest.mark.parametrize(
    ("values", "error"),
    [
        ({"timeout": "0"}, "greater than or equal to 1"),
        ({"timeout": "31"}, "less than or equal to 30"),
        ({"name": "two words"}, "Enter a valid"),
    ],
)
def test_invalid_values_answer_422_with_the_errors(
    admin: Client, values: dict[str, str], error: str
) -> None:
    response = admin.post("/webhooks/new", form(**values))
    assert response.status_code == 422
    assert error in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_a_taken_name_is_refused(admin: Client, crm: WebhookEndpoint) -> None:
    response = admin.post("/webhooks/new", form(url="https://other.example.com/"))
    assert response.status_code == 422
    assert "already exists" in response.content.decode()
    assert WebhookEndpoint.objects.count() == 1


def test_an_admin_deletes_an_endpoint(admin: Client, crm: WebhookEndpoint) -> None:
    assert admin.get(f"/webhooks/{crm.pk}/delete").status_code == 405
    response = admin.post(f"/webhooks/{crm.pk}/delete", follow=True)
    assert "Webhook endpoint crm deleted" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()
    assert admin.get(f"/webhooks/{crm.pk}/").status_code == 404


def test_a_test_post_reaches_an_allowed_receiver_signed(admin: Client, settings: Any) -> None:
    settings.QUAYMASTER_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    with serve() as receiver:
        endpoint = create_endpoint(name="local", url=receiver.url, secret=SECRET)
        response = admin.post(f"/webhooks/{endpoint.pk}/test", **HTMX)
    assert response.status_code == 200
    page = response.content.decode()
    assert "OK" in page
    assert "answered 204" in page
    ((headers, body),) = receiver.requests
    assert json.loads(body) == {"test": True, "endpoint": "local"}
    assert headers[SIGNATURE_HEADER] == sign(SECRET, body)
    assert SECRET not in page


def test_a_test_post_to_a_loopback_address_is_refused_with_the_reason(admin: Client) -> None:
    with serve() as receiver:
        endpoint = create_endpoint(name="local", url=receiver.url)
        response = admin.post(f"/webhooks/{endpoint.pk}/test")  # no htmx: the whole page
    assert response.status_code == 200
    page = response.content.decode()
    assert "<h1>Webhook endpoint local</h1>" in page
    assert "Failed" in page
    assert "127.0.0.1 is a loopback address; webhooks reach public addresses only" in page
    assert receiver.requests == []


def test_business_users_cannot_send_a_test_post(client: Client, settings: Any) -> None:
    settings.QUAYMASTER_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    logged_in(client, "bea", admin=False)
    with serve() as receiver:
        endpoint = create_endpoint(name="local", url=receiver.url)
        assert client.post(f"/webhooks/{endpoint.pk}/test", **HTMX).status_code == 403
    assert receiver.requests == []
