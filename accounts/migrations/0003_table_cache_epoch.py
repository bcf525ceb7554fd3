# Tables and their grants join what API requests keep per process under the cache epoch
# (accounts.epoch; the trigger function is 0002's). Named as tables, not imported: this app
# sits below zstorage; the migration runs after zstorage's last rebuild of them. A table's schema token changing
# (zstorage/0004's triggers) is an update of the table, so it renews the epoch too: a kept
# table never carries an old token for long.
#
# SQLite drops a table's triggers when Django's schema editor rebuilds that table: a later
# migration that alters zstorage_table or zstorage_tablegrant must create them again
# (tests/accounts/test_epoch.py fails if one is missing).

from django.db import migrations

WATCHED = ("zstorage_table", "zstorage_tablegrant")
SQLITE_BUMP = "UPDATE accounts_cacheepoch SET value = random() WHERE id = 1;"


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for table in WATCHED:
        if vendor == "postgresql":
            schema_editor.execute(
                f"CREATE TRIGGER {table}_cache_epoch AFTER INSERT OR UPDATE OR DELETE "
                f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION accounts_new_cache_epoch()"
            )
        elif vendor == "sqlite":
            for event in ("INSERT", "UPDATE", "DELETE"):
                schema_editor.execute(
                    f"CREATE TRIGGER {table}_cache_epoch_{event.lower()} AFTER {event} "
                    f"ON {table} BEGIN {SQLITE_BUMP} END"
                )


def drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for table in WATCHED:
        if vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_cache_epoch ON {table}")
        elif vendor == "sqlite":
            for event in ("insert", "update", "delete"):
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_cache_epoch_{event}")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_cache_epoch"),
        ("zstorage", "0004_table_schema_token"),
    ]

    operations = [migrations.RunPython(create, drop)]
