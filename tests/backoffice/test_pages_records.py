"""The generated record pages: list (search, filters, sort, pages, totals, htmx partial),
forms (widgets, inline errors, live validation, conflicts), detail, delete."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from tests.zstorage.builders import make_field, make_rule, make_table
from zstorage import records
from zstorage.models import Record, Table

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client: Client) -> Client:
    user = User.objects.create_user("root")
    user.groups.add(Group.objects.get(name="admins"))
    client.force_login(user)
    return client


@pytest.fixture
def shop() -> tuple[Table, Table]:
    customers = make_table("customers", "Customers")
    make_field(customers, "name", required=True)
    orders = make_table("orders", "Orders")
    number = make_field(orders, "number", required=True)
    total = make_field(orders, "total", "decimal", options={"places": 2})
    make_field(orders, "status", "choice", options={"choices": ["new", "paid"]})
    make_field(orders, "paid", "boolean")
    make_field(orders, "ordered_on", "date")
    make_field(orders, "at", "datetime")
    make_field(orders, "tags", "multi_choice", options={"choices": ["a", "b"]})
    make_field(orders, "extra", "json")
    make_field(orders, "customer", "reference", options={"table": "customers"})
    make_rule(orders, "unique", "This number is taken.", on=number)
    make_rule(orders, "min", "A total cannot be negative.", on=total, value=0)
    return customers, orders


def form(**values: object) -> dict[str, object]:
    return {f"f_{key}": value for key, value in values.items()}


def test_list_searches_filters_sorts_and_totals(admin: Client, shop):
    _, orders = shop
    for i in range(1, 8):
        records.create_record(
            orders,
            {"number": f"SO-{i}", "total": str(i * 10), "status": "paid" if i % 2 else "new"},
        )
    page = admin.get("/records/orders/?sort=-total")
    assert page.status_code == 200
    rows = [r.data["number"] for r in page.context["page"].object_list]
    assert rows == [f"SO-{i}" for i in range(7, 0, -1)]
    assert page.context["totals"]["total"] == "280.00"
    assert "7 records" in page.content.decode()

    paid = admin.get("/records/orders/?f_status=paid&f_total__from=20&f_total__to=60")
    assert [r.data["number"] for r in paid.context["page"].object_list] == ["SO-3", "SO-5"]
    assert paid.context["totals"]["total"] == "80.00"

    found = admin.get("/records/orders/?q=SO-4")
    assert [r.data["number"] for r in found.context["page"].object_list] == ["SO-4"]


def test_the_list_pages_with_page_numbers(admin: Client, shop):
    _, orders = shop
    records.bulk_create(orders, [{"number": f"SO-{i:02d}"} for i in range(60)])
    first = admin.get("/records/orders/?sort=number")
    assert len(first.context["page"].object_list) == 25
    assert 'aria-current="page">1<' in first.content.decode()
    third = admin.get("/records/orders/?sort=number&page=3")
    assert next(r.data["number"] for r in third.context["page"].object_list) == "SO-50"
    bigger = admin.get("/records/orders/?per_page=100")
    assert len(bigger.context["page"].object_list) == 60


def test_htmx_gets_only_the_record_table(admin: Client, shop):
    _, orders = shop
    records.create_record(orders, {"number": "SO-1"})
    partial = admin.get("/records/orders/?q=SO", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="records")
    body = partial.content.decode()
    assert body.lstrip().startswith("{#") is False
    assert '<div id="records"' in body
    assert "<html" not in body
    assert 'name="sort"' in body
    assert 'form="filters"' in body
    full = admin.get("/records/orders/?q=SO", HTTP_HX_REQUEST="true")  # another target
    assert "<html" in full.content.decode()


def test_a_bad_filter_or_sort_is_explained_not_an_error(admin: Client, shop):
    page = admin.get("/records/orders/?f_total__from=abc&sort=nope")
    assert page.status_code == 200
    body = page.content.decode()
    assert "Filter Total:" in body
    assert "Cannot sort by unknown field" in body


def test_the_form_has_a_widget_for_each_type(admin: Client, shop):
    customers, _ = shop
    ada = records.create_record(customers, {"name": "Ada"})
    page = admin.get("/records/orders/new").content.decode()
    assert 'type="number" name="f_total" id="id_f_total" value="" step="0.01"' in page
    assert '<select name="f_status"' in page
    assert 'type="checkbox" name="f_paid"' in page
    assert 'type="date" name="f_ordered_on"' in page
    assert 'type="datetime-local" name="f_at"' in page
    assert 'type="checkbox" name="f_tags" value="a"' in page
    assert '<textarea name="f_extra"' in page
    assert '<select name="f_customer"' in page
    assert f'<option value="{ada.pk}">#{ada.pk} Ada</option>' in page
    assert 'hx-get="/records/orders/lookup/customer"' in page


def test_create_shows_every_error_inline_and_keeps_the_input(admin: Client, shop):
    response = admin.post(
        "/records/orders/new",
        form(number="", total="-5", extra="{not json", ordered_on="yesterday"),
    )
    assert response.status_code == 422
    errors = {i.field.key: i.errors for i in response.context["inputs"]}
    assert errors["number"] == ["This field is required."]
    assert errors["total"] == ["A total cannot be negative."]
    assert errors["extra"][0].startswith("Enter valid JSON")
    assert errors["ordered_on"] == ["Enter a date as YYYY-MM-DD."]
    body = response.content.decode()
    assert 'id="errors-f_total"' in body
    assert "A total cannot be negative." in body
    assert 'value="-5"' in body
    assert Record.objects.count() == 0


def test_create_converts_each_widgets_value(admin: Client, shop):
    customers, orders = shop
    ada = records.create_record(customers, {"name": "Ada"})
    response = admin.post(
        "/records/orders/new",
        {
            **form(
                number="SO-1",
                total="12.5",
                status="paid",
                paid="on",
                ordered_on="2026-10-01",
                at="2026-10-01T13:30",
                extra='{"a": [1, 2]}',
                customer=str(ada.pk),
            ),
            "f_tags": ["b", "a"],
        },
    )
    assert response.status_code == 302
    record = orders.records.get()
    assert response["Location"] == f"/records/orders/{record.pk}/"
    assert record.data == {
        "number": "SO-1",
        "total": "12.50",
        "status": "paid",
        "paid": True,
        "ordered_on": "2026-10-01",
        "at": "2026-10-01T13:30:00.000000Z",
        "tags": ["a", "b"],
        "extra": {"a": [1, 2]},
        "customer": ada.pk,
    }


def test_uniqueness_errors_come_from_the_records_service(admin: Client, shop):
    _, orders = shop
    records.create_record(orders, {"number": "SO-1"})
    response = admin.post("/records/orders/new", form(number="SO-1"))
    assert response.status_code == 422
    assert "This number is taken." in response.content.decode()


def test_edit_clears_emptied_values_and_bumps_the_version(admin: Client, shop):
    _, orders = shop
    record = records.create_record(orders, {"number": "SO-1", "total": "5", "paid": True})
    page = admin.get(f"/records/orders/{record.pk}/edit").content.decode()
    assert 'name="version" value="1"' in page
    assert 'value="5.00"' in page
    response = admin.post(
        f"/records/orders/{record.pk}/edit", {**form(number="SO-1b", total=""), "version": "1"}
    )
    assert response.status_code == 302
    record.refresh_from_db()
    assert record.data == {"number": "SO-1b", "paid": False}
    assert record.version == 2


def test_a_stale_version_is_a_conflict_that_keeps_the_input(admin: Client, shop):
    _, orders = shop
    record = records.create_record(orders, {"number": "SO-1"})
    records.update_record(orders, record.pk, {"number": "SO-2"})  # someone else saved
    response = admin.post(
        f"/records/orders/{record.pk}/edit", {**form(number="mine"), "version": "1"}
    )
    assert response.status_code == 409
    body = response.content.decode()
    assert "Someone else saved this record" in body
    assert 'value="mine"' in body
    assert 'name="version" value="2"' in body  # saving again overwrites, knowingly
    record.refresh_from_db()
    assert record.data["number"] == "SO-2"


def test_live_validation_answers_for_one_field(admin: Client, shop):
    body = {**form(number="", total="-1"), "_field": "total"}
    response = admin.post("/records/orders/validate", body, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="errors-f_total"' in html
    assert "A total cannot be negative." in html
    assert "required" not in html  # only the field that was left
    fine = admin.post("/records/orders/validate", {**form(total="3"), "_field": "total"})
    assert "<li>" not in fine.content.decode()


def test_reference_lookup_searches_the_referenced_table(admin: Client, shop):
    customers, _ = shop
    ada = records.create_record(customers, {"name": "Ada Lovelace"})
    records.create_record(customers, {"name": "Grace Hopper"})
    options = admin.get("/records/orders/lookup/customer?q=love").content.decode()
    assert f"#{ada.pk} Ada Lovelace" in options
    assert "Grace" not in options
    by_id = admin.get(f"/records/orders/lookup/customer?q=%23{ada.pk}").content.decode()
    assert "Ada Lovelace" in by_id


def test_only_a_reference_field_has_a_lookup(admin: Client, shop):
    assert admin.get("/records/orders/lookup/number?q=x").status_code == 404
    assert admin.get("/records/orders/lookup/nothing?q=x").status_code == 404


def test_detail_shows_values_history_and_children(admin: Client, shop):
    customers, orders = shop
    ada = records.create_record(customers, {"name": "Ada"})
    order = records.create_record(orders, {"number": "SO-1", "customer": ada.pk})
    records.update_record(customers, ada.pk, {"name": "Ada L."})
    page = admin.get(f"/records/customers/{ada.pk}/").content.decode()
    assert "Ada L." in page
    assert "Referenced by" in page
    assert f'href="/records/orders/{order.pk}/"' in page
    assert "<del>Ada</del> → <ins>Ada L.</ins>" in page
    order_page = admin.get(f"/records/orders/{order.pk}/").content.decode()
    assert f'href="/records/customers/{ada.pk}/"' in order_page


def test_delete_asks_first_and_refuses_referenced_records(admin: Client, shop):
    customers, orders = shop
    ada = records.create_record(customers, {"name": "Ada"})
    order = records.create_record(orders, {"number": "SO-1", "customer": ada.pk})
    assert b"Delete record" in admin.get(f"/records/customers/{ada.pk}/delete").content
    refused = admin.post(f"/records/customers/{ada.pk}/delete", {"version": "1"}, follow=True)
    assert "referenced by other records" in refused.content.decode()
    assert Record.objects.filter(pk=ada.pk).exists()

    gone = admin.post(f"/records/orders/{order.pk}/delete", {"version": "1"})
    assert gone["Location"] == "/records/orders/"
    assert not Record.objects.filter(pk=order.pk).exists()


def test_business_user_without_view_on_the_target_types_an_id(client: Client, shop):
    _, orders = shop
    user = User.objects.create_user("bea")
    group = Group.objects.create(name="sales")
    user.groups.add(group)
    from zstorage.models import TableGrant

    TableGrant.objects.create(table=orders, group=group, can_add=True)
    client.force_login(user)
    page = client.get("/records/orders/new").content.decode()
    assert 'type="number" name="f_customer"' in page
    assert client.get("/records/orders/lookup/customer?q=a").status_code == 404


def test_a_reference_reads_as_its_record_s_label_on_the_detail_and_in_history(admin: Client, shop):
    customers, orders = shop
    ada = records.create_record(customers, {"name": "Ada Lovelace"})
    bob = records.create_record(customers, {"name": "Bob"})
    order = records.create_record(orders, {"number": "SO-1", "customer": ada.pk})
    records.update_record(orders, order.pk, {"customer": bob.pk})

    page = admin.get(f"/records/orders/{order.pk}/").content.decode()
    assert f'<a href="/records/customers/{bob.pk}/">#{bob.pk} Bob</a>' in page
    assert f"<del>#{ada.pk} Ada Lovelace</del> → <ins>#{bob.pk} Bob</ins>" in page


def test_a_reference_to_a_table_the_user_may_not_see_stays_a_bare_id(client: Client, shop):
    """A label would tell a business user what a table they were not granted holds."""
    customers, orders = shop
    ada = records.create_record(customers, {"name": "Ada Lovelace"})
    order = records.create_record(orders, {"number": "SO-1", "customer": ada.pk})
    user = User.objects.create_user("bea")
    group = Group.objects.create(name="sales")
    user.groups.add(group)
    from zstorage.models import TableGrant

    TableGrant.objects.create(table=orders, group=group)
    client.force_login(user)
    page = client.get(f"/records/orders/{order.pk}/").content.decode()
    assert "Ada Lovelace" not in page
    assert f"#{ada.pk}" in page
    assert "/records/customers/" not in page


def test_the_list_shows_references_by_label(admin: Client, shop):
    customers, orders = shop
    ada = records.create_record(customers, {"name": "Ada Lovelace"})
    records.create_record(orders, {"number": "SO-1", "customer": ada.pk})
    records.create_record(orders, {"number": "SO-2", "customer": ada.pk})
    page = admin.get("/records/orders/").content.decode()
    assert page.count(f'<a href="/records/customers/{ada.pk}/">#{ada.pk} Ada Lovelace</a>') == 2


def test_a_reference_filter_takes_an_id_or_a_name(admin: Client, shop):
    customers, orders = shop
    ada = records.create_record(customers, {"name": "Ada Lovelace"})
    bob = records.create_record(customers, {"name": "Bob"})
    records.create_record(orders, {"number": "SO-1", "customer": ada.pk})
    records.create_record(orders, {"number": "SO-2", "customer": bob.pk})
    records.create_record(orders, {"number": "SO-3"})

    def numbers(query: str) -> list[str]:
        page = admin.get(f"/records/orders/?{query}")
        assert page.status_code == 200
        return sorted(r.data["number"] for r in page.context["page"].object_list)

    assert numbers(f"f_customer={bob.pk}") == ["SO-2"]
    assert numbers(f"f_customer=%23{ada.pk}") == ["SO-1"]
    assert numbers("f_customer=lovel") == ["SO-1"], "part of the name, any case"
    assert numbers("f_customer=nobody") == []


def test_a_name_filter_on_a_table_the_user_may_not_see_asks_for_the_id(client: Client, shop):
    customers, orders = shop
    ada = records.create_record(customers, {"name": "Ada Lovelace"})
    records.create_record(orders, {"number": "SO-1", "customer": ada.pk})
    user = User.objects.create_user("bea")
    group = Group.objects.create(name="sales")
    user.groups.add(group)
    from zstorage.models import TableGrant

    TableGrant.objects.create(table=orders, group=group)
    client.force_login(user)
    page = client.get("/records/orders/?f_customer=Ada")
    assert page.status_code == 200
    assert "Type the record&#x27;s id" in page.content.decode()
    assert client.get(f"/records/orders/?f_customer={ada.pk}").context["page"].object_list


def test_who_may_only_change_records_is_offered_the_import(client: Client, shop):
    _, orders = shop
    user = User.objects.create_user("bea")
    group = Group.objects.create(name="editors")
    user.groups.add(group)
    from zstorage.models import TableGrant

    TableGrant.objects.create(table=orders, group=group, can_change=True)
    client.force_login(user)
    page = client.get("/records/orders/").content.decode()
    assert "Import CSV" in page
    assert "New record" not in page
    assert "id or name" in page, "the reference filter says it takes a name"


def test_a_table_s_display_field_names_its_records_where_others_point_at_them(admin: Client, shop):
    customers, orders = shop
    make_field(customers, "email", "email")
    ada = records.create_record(customers, {"name": "Ada Lovelace", "email": "ada@example.com"})
    order = records.create_record(orders, {"number": "SO-1", "customer": ada.pk})

    settings_page = admin.get("/tables/customers/").content.decode()
    assert "Display field" in settings_page
    assert '<option value="email">' in settings_page
    saved = admin.post(
        "/tables/customers/",
        {"name": "Customers", "slug": "customers", "description": "", "display_field": "email"},
    )
    assert saved.status_code == 302, saved.content.decode()
    page = admin.get(f"/records/orders/{order.pk}/").content.decode()
    assert f"#{ada.pk} ada@example.com" in page
    assert "Ada Lovelace" not in page
