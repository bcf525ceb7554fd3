# The cache epoch (accounts.epoch): one row, and the triggers that give it a new random value
# whenever a token, its queue limit, a user, a group, a membership, a permission or a queue
# changes, however the change is made. Columns that change on every use (a token's last_used_at, a
# user's last_login) fire nothing.
#
# SQLite drops a table's triggers when Django's schema editor rebuilds that table (most ALTERs
# there do): a later migration that alters one of these tables must create them again.
# tests/accounts/test_epoch.py fails if one is missing on either database.

from django.conf import settings
from django.db import migrations, models

#: table -> the columns whose update matters (None: any update).
WATCHED = {
    "backoffice_apitoken": ["user_id", "key_hash", "revoked_at"],
    "backoffice_apitoken_queues": None,
    "auth_user": ["username", "is_active", "is_staff", "is_superuser"],
    "auth_group": None,
    "auth_user_groups": None,
    "auth_user_user_permissions": None,
    "auth_group_permissions": None,
    "auth_permission": None,
    # Named as a table, not imported: this app sits below queues (its 0001 depends on
    # queues' first migration already).
    "queues_queue": None,
}

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION accounts_new_cache_epoch() RETURNS trigger AS $$
BEGIN
    UPDATE accounts_cacheepoch SET value = (random() * 9.2e18)::bigint WHERE id = 1;
    RETURN NULL;
END $$ LANGUAGE plpgsql;
"""
SQLITE_BUMP = "UPDATE accounts_cacheepoch SET value = random() WHERE id = 1;"


def postgresql(table, columns):
    update = f"UPDATE OF {', '.join(columns)}" if columns else "UPDATE"
    return [
        f"CREATE TRIGGER {table}_cache_epoch AFTER INSERT OR DELETE OR {update} ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION accounts_new_cache_epoch()"
    ]


def sqlite(table, columns):
    update = f"UPDATE OF {', '.join(columns)}" if columns else "UPDATE"
    return [
        f"CREATE TRIGGER {table}_cache_epoch_{name} AFTER {event} ON {table} "
        f"BEGIN {SQLITE_BUMP} END"
        for name, event in (("insert", "INSERT"), ("update", update), ("delete", "DELETE"))
    ]


def statements(vendor):
    if vendor == "postgresql":
        found = [PG_FUNCTION]
        for table, columns in WATCHED.items():
            found += postgresql(table, columns)
        return found
    if vendor == "sqlite":
        return [sql for table, columns in WATCHED.items() for sql in sqlite(table, columns)]
    return []


def create(apps, schema_editor):
    apps.get_model("accounts", "CacheEpoch").objects.create(id=1, value=0)
    for sql in statements(schema_editor.connection.vendor):
        schema_editor.execute(sql)


def drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for table in WATCHED:
        if vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_cache_epoch ON {table}")
        elif vendor == "sqlite":
            for name in ("insert", "update", "delete"):
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_cache_epoch_{name}")
    if vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS accounts_new_cache_epoch()")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_api_tokens_from_backoffice"),
        # After the last migration that rebuilds queues_queue on SQLite (a rebuild drops the
        # table's triggers).
        ("queues", "0004_message_priority"),
        ("auth", "0012_alter_user_first_name_max_length"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="CacheEpoch",
            fields=[
                (
                    "id",
                    models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False),
                ),
                ("value", models.BigIntegerField(default=0)),
            ],
        ),
        migrations.RunPython(create, drop),
    ]
