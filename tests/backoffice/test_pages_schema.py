"""The admin pages for tables, fields, rules and permissions, through the test client."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from tests.backoffice.page_text import page_text, summary
from tests.zstorage.builders import make_field, make_table
from zstorage import records
from zstorage.models import Field, Rule, Table, TableGrant

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client: Client) -> Client:
    user = User.objects.create_user("root")
    user.groups.add(Group.objects.get(name="admins"))
    client.force_login(user)
    return client


def field_post(**values: object) -> dict[str, object]:
    data: dict[str, object] = {"name": "", "key": "", "type": "text", "default": ""}
    data.update(values)
    return data


def test_create_a_table_then_land_on_its_fields(admin: Client):
    response = admin.post("/tables/new", {"name": "Orders", "slug": "orders", "description": ""})
    assert response.status_code == 302
    assert response["Location"] == "/tables/orders/fields/"
    assert Table.objects.get(slug="orders").name == "Orders"
    assert b"Orders" in admin.get("/tables/").content


def test_a_duplicate_slug_is_shown_next_to_the_slug(admin: Client):
    make_table("orders")
    response = admin.post("/tables/new", {"name": "Again", "slug": "orders"})
    assert response.status_code == 422
    assert summary(response) == ["Slug: Another table has the slug “orders”: choose another."]


def test_the_slug_help_and_error_say_what_is_accepted(admin: Client):
    help_text = "letters, digits, '-' and '_', with no spaces (e.g. sales-orders)"
    assert f"Used in URLs and the API: {help_text}." in page_text(admin.get("/tables/new"))
    refused = admin.post("/tables/new", {"name": "Sales", "slug": "sales orders!"})
    assert refused.status_code == 422
    assert summary(refused) == [f"Slug: Use only {help_text}."]
    # Everything the help names is accepted, underscores included.
    accepted = admin.post("/tables/new", {"name": "Sales", "slug": "Sales_orders-2"})
    assert accepted.status_code == 302
    assert Table.objects.filter(slug="Sales_orders-2").exists()


def test_the_table_form_reports_every_error_at_once(admin: Client):
    make_table("orders")
    response = admin.post("/tables/orders/", {"name": "", "slug": "no spaces"})
    assert response.status_code == 422
    assert summary(response) == [
        "Name: This field is required.",
        "Slug: Use only letters, digits, '-' and '_', with no spaces (e.g. sales-orders).",
    ]
    assert "Nothing was saved: 2 things need correcting." in page_text(response)


def test_edit_a_table_and_refuse_a_rename_that_references_block(admin: Client):
    customers = make_table("customers", "Customers")
    orders = make_table("orders")
    make_field(orders, "customer", "reference", options={"table": "customers"})
    ok = admin.post("/tables/customers/", {"name": "Clients", "slug": "customers"})
    assert ok.status_code == 302
    customers.refresh_from_db()
    assert customers.name == "Clients"

    refused = admin.post("/tables/customers/", {"name": "Clients", "slug": "clients"})
    assert refused.status_code == 422
    assert "Reference fields point at this table" in refused.content.decode()


def test_delete_a_table_names_its_records_and_needs_confirmation(admin: Client):
    table = make_table("orders")
    make_field(table, "number")
    records.create_record(table, {"number": "1"})
    records.create_record(table, {"number": "2"})
    page = admin.get("/tables/orders/delete").content.decode()
    assert "its 2 records" in page
    admin.post("/tables/orders/delete", {"confirm": "yes"})
    assert not Table.objects.filter(slug="orders").exists()


def test_add_fields_of_every_kind_of_options(admin: Client):
    make_table("customers")
    make_table("orders")
    posts = [
        field_post(name="Number", key="number", required="on"),
        field_post(name="Total", key="total", type="decimal", places="2"),
        field_post(
            name="Status", key="status", type="choice", choices="new\npaid\n", default="new"
        ),
        field_post(name="Customer", key="customer", type="reference", target="customers"),
        field_post(name="Extra", key="extra", type="json", default='{"a": 1}'),
    ]
    for data in posts:
        response = admin.post("/tables/orders/fields/", data)
        assert response.status_code == 302, response.content.decode()
    fields = {f.key: f for f in Field.objects.filter(table__slug="orders")}
    assert fields["number"].required
    assert fields["total"].options == {"places": 2}
    assert fields["status"].options == {"choices": ["new", "paid"]}
    assert fields["status"].default == "new"
    assert fields["customer"].options == {"table": "customers"}
    assert fields["extra"].default == {"a": 1}
    listed = admin.get("/tables/orders/fields/").content.decode()
    assert "2 decimal places" in listed
    assert "<td>Decimal</td>" in listed
    assert "<td>Reference</td>" in listed
    assert [f.key for f in Field.objects.filter(table__slug="orders")] == [
        "number",
        "total",
        "status",
        "customer",
        "extra",
    ]


def test_field_errors_from_the_schema_service_show_next_to_the_input(admin: Client):
    make_table("orders")
    response = admin.post(
        "/tables/orders/fields/", field_post(name="S", key="s", type="choice", choices="a\na")
    )
    assert response.status_code == 422
    assert summary(response) == ["Choices: Each choice may appear once."]
    bad_key = admin.post("/tables/orders/fields/", field_post(name="Bad", key="Bad Key"))
    assert summary(bad_key) == [
        "Key: Use lowercase letters, digits and underscores, starting with a letter (at most 63)."
    ]


def test_the_field_form_reports_every_error_at_once_by_label(admin: Client):
    table = make_table("orders")
    make_field(table, "code")
    everything = admin.post("/tables/orders/fields/", field_post(key="1st", type="choice"))
    assert everything.status_code == 422
    assert summary(everything) == [
        "Name: This field is required.",
        "Key: Use lowercase letters, digits and underscores, starting with a letter (at most 63).",
        "Choices: Give at least one choice, one per line.",
    ]
    taken = admin.post(
        "/tables/orders/fields/", field_post(name="Code", key="code", type="reference")
    )
    assert summary(taken) == [
        "Key: This table already has a field with the key code.",
        "Referenced table: Choose the table this field refers to.",
    ]
    assert "options.table" not in page_text(taken)
    assert list(table.fields.values_list("key", flat=True)) == ["code"]


def test_only_new_tables_and_fields_fill_their_slug_or_key_from_the_name(admin: Client):
    table = make_table("orders")
    make_field(table, "code")
    assert 'data-fill-from="id_name"' in admin.get("/tables/new").content.decode()
    assert 'data-fill-from="id_name"' not in admin.get("/tables/orders/").content.decode()
    new_field = admin.get("/tables/orders/fields/").content.decode()
    assert 'data-fill-as="key"' in new_field
    assert "data-fill-from" not in admin.get("/tables/orders/fields/code/edit").content.decode()
    assert "/static/backoffice/forms.js" in new_field


def test_the_type_options_partial_follows_the_chosen_type(admin: Client):
    make_table("orders")
    choice = admin.get("/tables/orders/fields/options?type=choice", HTTP_HX_REQUEST="true")
    assert b'name="choices"' in choice.content
    reference = admin.get("/tables/orders/fields/options?type=reference").content
    assert b'name="target"' in reference
    assert b'name="choices"' not in reference


def test_a_refused_type_change_shows_the_services_message(admin: Client):
    table = make_table("orders")
    make_field(table, "code")
    records.create_record(table, {"code": "A-1"})
    response = admin.post(
        "/tables/orders/fields/code/edit", field_post(name="Code", key="code", type="integer")
    )
    assert response.status_code == 422
    page = response.content.decode()
    assert "values of &#x27;code&#x27; cannot become integer" in page
    assert Field.objects.get(key="code").type == "text"


def test_a_converting_type_change_is_saved(admin: Client):
    table = make_table("orders")
    make_field(table, "qty")
    record = records.create_record(table, {"qty": "12"})
    response = admin.post(
        "/tables/orders/fields/qty/edit", field_post(name="Quantity", key="qty", type="integer")
    )
    assert response.status_code == 302
    record.refresh_from_db()
    assert record.data == {"qty": 12}


def test_one_decimal_place_is_said_in_the_singular(admin: Client):
    table = make_table("orders")
    make_field(table, "rate", "decimal", options={"places": 1})
    assert "1 decimal place " in page_text(admin.get("/tables/orders/fields/")) + " "


def test_reorder_fields_up_and_down(admin: Client):
    table = make_table("orders")
    for key in ("a", "b", "c"):
        make_field(table, key)
    admin.post("/tables/orders/fields/c/move", {"direction": "up"})
    assert [f.key for f in table.fields.all()] == ["a", "c", "b"]
    admin.post("/tables/orders/fields/a/move", {"direction": "down"})
    assert [f.key for f in table.fields.all()] == ["c", "a", "b"]
    admin.post("/tables/orders/fields/c/move", {"direction": "up"})  # already first
    assert [f.key for f in table.fields.all()] == ["c", "a", "b"]


def test_delete_a_field_names_the_records_holding_values(admin: Client):
    table = make_table("orders")
    make_field(table, "note")
    make_field(table, "n", "integer")
    for i in range(3):
        records.create_record(table, {"note": "x"} if i else {"n": 1})
    page = admin.get("/tables/orders/fields/note/delete").content.decode()
    assert "2 records</strong> hold a value" in page
    response = admin.post("/tables/orders/fields/note/delete", {"confirm": "yes"})
    assert response.status_code == 302
    assert not table.fields.filter(key="note").exists()
    assert all("note" not in r.data for r in table.records.all())


def test_add_rules_with_kind_specific_params_and_delete_one(admin: Client):
    table = make_table("orders")
    make_field(table, "total", "decimal")
    make_field(table, "code")
    make_field(table, "a", "date")
    make_field(table, "b", "date")
    posts = [
        {"kind": "min", "field": "total", "value": "0", "message": "No negative totals."},
        {"kind": "regex", "field": "code", "pattern": "^[A-Z]+$", "message": "Capitals."},
        {"kind": "max_length", "field": "code", "length": "5", "message": "Short."},
        {"kind": "choices", "field": "code", "values": "AB\nCD", "message": "AB or CD."},
        {"kind": "expression", "expression": "b >= a", "error_field": "b", "message": "Later."},
        {"kind": "unique_together", "together": ["code", "a"], "message": "Taken."},
    ]
    for data in posts:
        response = admin.post("/tables/orders/rules/", data)
        assert response.status_code == 302, response.content.decode()
    rules = {r.kind: r for r in Rule.objects.filter(table=table)}
    assert rules["min"].params == {"value": "0"}
    assert rules["max_length"].params == {"value": 5}
    assert rules["choices"].params == {"values": ["AB", "CD"]}
    assert rules["expression"].params == {"expression": "b >= a", "field": "b"}
    assert rules["unique_together"].params == {"fields": ["code", "a"]}

    page = admin.get("/tables/orders/rules/").content.decode()
    assert "No negative totals." in page
    admin.post(f"/tables/orders/rules/{rules['regex'].pk}/delete")
    assert not Rule.objects.filter(pk=rules["regex"].pk).exists()


def test_rule_errors_show_on_the_kinds_input(admin: Client):
    table = make_table("orders")
    make_field(table, "code")
    response = admin.post(
        "/tables/orders/rules/",
        {"kind": "regex", "field": "code", "pattern": "([", "message": "Bad."},
    )
    assert response.status_code == 422
    assert summary(response)[0].startswith("Pattern: Not a valid pattern")
    params = admin.get("/tables/orders/rules/params?kind=unique_together").content
    assert b'name="together"' in params
    assert b'name="pattern"' not in params


def test_the_rule_form_reports_every_error_at_once_in_the_forms_words(admin: Client):
    table = make_table("orders")
    make_field(table, "code")
    response = admin.post("/tables/orders/rules/", {"kind": "min_length", "length": ""})
    assert response.status_code == 422
    assert summary(response) == [
        "Message: Give the message a person sees when the rule fails.",
        "Field: Choose the field this rule checks.",
        "Length: Give the length as a whole number (0 or more).",
    ]
    assert "params." not in page_text(response)
    assert not table.rules.exists()


def test_the_rule_form_names_what_does_not_suit_the_field(admin: Client):
    table = make_table("orders")
    make_field(table, "quantity", "integer")
    make_field(table, "code")
    no_length = admin.post(
        "/tables/orders/rules/",
        {"kind": "max_length", "field": "quantity", "length": "3", "message": "Short."},
    )
    assert summary(no_length) == ["Field: Quantity holds integer values, which have no length."]
    both = admin.post(
        "/tables/orders/rules/", {"kind": "regex", "field": "code", "pattern": "([", "message": ""}
    )
    lines = summary(both)
    assert lines[0] == "Message: Give the message a person sees when the rule fails."
    assert lines[1].startswith("Pattern: Not a valid pattern")
    one = admin.post(
        "/tables/orders/rules/",
        {"kind": "unique_together", "together": ["code"], "message": "Taken."},
    )
    assert summary(one) == ["Fields unique together: Tick two or more fields."]
    limit = admin.post(
        "/tables/orders/rules/",
        {"kind": "min", "field": "quantity", "value": "", "message": "Too few."},
    )
    assert summary(limit) == ["Limit: Give the limit: a number, or a date as YYYY-MM-DD."]
    assert not table.rules.exists()


def test_a_table_rule_ignores_a_field_left_in_the_form(admin: Client):
    table = make_table("orders")
    make_field(table, "a", "date")
    make_field(table, "b", "date")
    response = admin.post(
        "/tables/orders/rules/",
        {"kind": "expression", "field": "a", "expression": "b >= a", "message": "Later."},
    )
    assert response.status_code == 302
    assert table.rules.get().field is None


def test_grant_groups_permissions_on_a_table(admin: Client):
    table = make_table("orders")
    sales = Group.objects.create(name="sales")
    page = admin.get("/tables/orders/permissions").content.decode()
    assert "sales" in page
    assert ">admins<" not in page  # admins may do everything anyway

    admin.post("/tables/orders/permissions", {f"grant-{sales.pk}-change": "on"})
    grant = TableGrant.objects.get(table=table, group=sales)
    assert (grant.can_view, grant.can_add, grant.can_change, grant.can_delete) == (
        True,
        False,
        True,
        False,
    )
    admin.post("/tables/orders/permissions", {})
    assert not TableGrant.objects.filter(table=table).exists()
