# The token record writes cache a table's schema under (zstorage.schema_cache), and the
# triggers that renew it whenever a field or rule of the table is written, however it is
# written (the ORM, a queryset update, raw SQL): the cache's correctness rests on them.
#
# SQLite drops a table's triggers when Django's schema editor rebuilds that table (most ALTERs
# there do): a later migration that alters zstorage_field or zstorage_rule must create them
# again. tests/zstorage/test_schema_cache.py fails if they are missing on either database.

from django.db import migrations, models

import zstorage.models

WATCHED = ("zstorage_field", "zstorage_rule")

POSTGRESQL = """
CREATE OR REPLACE FUNCTION zstorage_renew_schema_token() RETURNS trigger AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE zstorage_table SET schema_token = md5(random()::text || clock_timestamp()::text)
        WHERE id = OLD.table_id;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        UPDATE zstorage_table SET schema_token = md5(random()::text || clock_timestamp()::text)
        WHERE id = NEW.table_id;
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;
"""
POSTGRESQL_TRIGGER = """
CREATE TRIGGER {table}_schema_token AFTER INSERT OR UPDATE OR DELETE ON {table}
FOR EACH ROW EXECUTE FUNCTION zstorage_renew_schema_token();
"""
SQLITE_TOKEN = "lower(hex(randomblob(16)))"
SQLITE_TRIGGERS = """
CREATE TRIGGER {table}_schema_token_insert AFTER INSERT ON {table} BEGIN
    UPDATE zstorage_table SET schema_token = {token} WHERE id = NEW.table_id;
END;
CREATE TRIGGER {table}_schema_token_update AFTER UPDATE ON {table} BEGIN
    UPDATE zstorage_table SET schema_token = {token} WHERE id IN (OLD.table_id, NEW.table_id);
END;
CREATE TRIGGER {table}_schema_token_delete AFTER DELETE ON {table} BEGIN
    UPDATE zstorage_table SET schema_token = {token} WHERE id = OLD.table_id;
END;
"""


def statements(vendor: str) -> list[str]:
    if vendor == "postgresql":
        return [POSTGRESQL] + [POSTGRESQL_TRIGGER.format(table=t) for t in WATCHED]
    if vendor == "sqlite":
        found = []
        for table in WATCHED:
            text = SQLITE_TRIGGERS.format(table=table, token=SQLITE_TOKEN)
            found += [s.strip() + " END;" for s in text.split("END;") if s.strip()]
        return found
    return []


def create_triggers(apps, schema_editor):
    for sql in statements(schema_editor.connection.vendor):
        schema_editor.execute(sql)


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for table in WATCHED:
        if vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_schema_token ON {table}")
        elif vendor == "sqlite":
            for op in ("insert", "update", "delete"):
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_schema_token_{op}")
    if vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS zstorage_renew_schema_token()")


class Migration(migrations.Migration):
    dependencies = [
        ("zstorage", "0003_field_type_choices_from_registry"),
    ]

    operations = [
        migrations.AddField(
            model_name="table",
            name="schema_token",
            field=models.CharField(
                default=zstorage.models.new_schema_token, editable=False, max_length=32
            ),
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
