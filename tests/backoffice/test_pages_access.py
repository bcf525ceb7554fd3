"""Who may open which back-office page: login everywhere, schema pages for admins only,
record pages only for the tables a user's groups are granted."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from tests.zstorage.builders import make_field, make_table
from zstorage import records
from zstorage.models import Table, TableGrant

pytestmark = pytest.mark.django_db

ADMIN_PAGES = [
    "/tables/",
    "/tables/new",
    "/tables/orders/",
    "/tables/orders/fields/",
    "/tables/orders/fields/number/edit",
    "/tables/orders/fields/number/delete",
    "/tables/orders/rules/",
    "/tables/orders/permissions",
    "/tables/orders/delete",
]
RECORD_PAGES = ["/records/orders/", "/records/orders/{id}/", "/records/orders/export.csv"]


@pytest.fixture
def orders() -> Table:
    table = make_table("orders", "Orders")
    make_field(table, "number", required=True)
    records.create_record(table, {"number": "SO-1"})
    return table


def user_in(group: str | None = None, name: str = "bea") -> User:
    user = User.objects.create_user(name)
    user.groups.add(Group.objects.get(name="business users"))
    if group:
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    return user


def admin_client() -> Client:
    admin = User.objects.create_user("root")
    admin.groups.add(Group.objects.get(name="admins"))
    client = Client()
    client.force_login(admin)
    return client


@pytest.mark.parametrize(
    "path", ["/", "/records/", "/tokens/", *ADMIN_PAGES, *RECORD_PAGES, "/records/orders/new"]
)
def test_every_page_needs_login(client: Client, orders: Table, path: str):
    response = client.get(path.format(id=orders.records.get().pk))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_business_users_cannot_open_admin_pages(client: Client, orders: Table, path: str):
    client.force_login(user_in())
    assert client.get(path.format(id=orders.records.get().pk)).status_code == 403


@pytest.mark.parametrize("path", ADMIN_PAGES + RECORD_PAGES)
def test_admins_open_every_page(orders: Table, path: str):
    assert admin_client().get(path.format(id=orders.records.get().pk)).status_code == 200


def test_a_user_without_grants_sees_no_table(client: Client, orders: Table):
    client.force_login(user_in())
    index = client.get("/records/")
    assert b"No table is shared with you" in index.content
    assert b"Orders" not in index.content
    # Not even the table's existence leaks: 404, not 403.
    assert client.get("/records/orders/").status_code == 404
    assert client.get(f"/records/orders/{orders.records.get().pk}/").status_code == 404


def test_grants_decide_each_record_action(client: Client, orders: Table):
    group = Group.objects.create(name="sales")
    grant = TableGrant.objects.create(table=orders, group=group, can_view=True)
    client.force_login(user_in("sales"))
    record_id = orders.records.get().pk

    listing = client.get("/records/orders/")
    assert listing.status_code == 200
    assert b"New record" not in listing.content
    assert client.get(f"/records/orders/{record_id}/").status_code == 200
    assert client.get("/records/orders/new").status_code == 403
    assert client.get(f"/records/orders/{record_id}/edit").status_code == 403
    assert client.get(f"/records/orders/{record_id}/delete").status_code == 403
    assert client.get("/records/orders/import").status_code == 403

    grant.can_add = grant.can_change = grant.can_delete = True
    grant.save()
    assert b"New record" in client.get("/records/orders/").content
    assert client.get("/records/orders/new").status_code == 200
    assert client.get(f"/records/orders/{record_id}/edit").status_code == 200
    assert client.get(f"/records/orders/{record_id}/delete").status_code == 200


def test_a_business_user_sees_only_granted_tables(client: Client, orders: Table):
    secret = make_table("payroll", "Payroll")
    make_field(secret, "amount", "decimal")
    records.create_record(secret, {"amount": "10"})
    TableGrant.objects.create(table=orders, group=Group.objects.create(name="sales"))
    client.force_login(user_in("sales"))

    index = client.get("/records/").content.decode()
    assert "Orders" in index
    assert "Payroll" not in index
    home = client.get("/").content.decode()
    assert 'id="tables-count">1<' in home
    assert 'id="records-count">1<' in home
    assert client.get("/records/payroll/").status_code == 404


def test_navigation_shows_admin_sections_to_admins_only(client: Client, orders: Table):
    client.force_login(user_in())
    page = client.get("/").content.decode()
    assert 'href="/tables/"' not in page
    assert 'href="/records/"' in page
    assert 'href="/tokens/"' in page

    admin_page = admin_client().get("/").content.decode()
    assert 'href="/tables/"' in admin_page
    assert "Engines configured" in admin_page


def test_the_layout_is_keyboard_and_screen_reader_friendly(client: Client, orders: Table):
    page = admin_client().get("/records/orders/").content.decode()
    assert '<a class="skip-link" href="#main">' in page
    assert '<main id="main"' in page
    assert 'aria-label="Breadcrumb"' in page
    assert 'aria-current="page"' in page  # the current section in the navigation
    assert 'name="viewport"' in page
    assert "/static/backoffice/quaymaster.css" in page
    assert "/static/django_htmx/htmx-2.min.js" in page  # served by the project, no CDN
    assert "X-CSRFToken" in page


def test_dashboard_lists_recent_changes_with_links(orders: Table):
    page = admin_client().get("/").content.decode()
    record_id = orders.records.get().pk
    assert "Recent record changes" in page
    assert f'href="/records/orders/{record_id}/"' in page
    assert "Created" in page


def test_dashboard_panels_hook_adds_sections():
    from backoffice import dashboard

    def panel(request):
        return dashboard.Panel("Queue depth", "backoffice/_form_errors.html", {})

    dashboard.register_panel(panel)
    try:
        page = admin_client().get("/").content.decode()
    finally:
        dashboard._PANELS.remove(panel)
    assert "Queue depth" in page


def test_refusals_render_in_the_layout(client: Client, orders: Table):
    client.force_login(user_in())
    forbidden = client.get("/tables/")
    assert forbidden.status_code == 403
    assert "Only admins may open this page." in forbidden.content.decode()
    assert 'class="skip-link"' in forbidden.content.decode()
    missing = client.get("/records/orders/")
    assert missing.status_code == 404
    assert "nothing you may see" in missing.content.decode()
