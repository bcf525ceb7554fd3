# A table's links and their queues are part of what record writes cache under the table's
# schema token (zstorage.schema_cache, the queues app's outbox routes): renew the token of
# every table a link or a queue change touches, however it is written.
#
# SQLite drops a table's triggers when Django's schema editor rebuilds it: a later migration
# that alters queues_queuelink or queues_queue there must create them again
# (tests/zstorage/test_schema_cache.py fails if they are missing).

from django.db import migrations

PG_TOKEN = "md5(random()::text || clock_timestamp()::text)"
SQLITE_TOKEN = "lower(hex(randomblob(16)))"

POSTGRESQL = [
    f"""
CREATE OR REPLACE FUNCTION queues_renew_link_schema_token() RETURNS trigger AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE zstorage_table SET schema_token = {PG_TOKEN} WHERE id = OLD.table_id;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        UPDATE zstorage_table SET schema_token = {PG_TOKEN} WHERE id = NEW.table_id;
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;
""",
    """
CREATE TRIGGER queues_queuelink_schema_token AFTER INSERT OR UPDATE OR DELETE
ON queues_queuelink FOR EACH ROW EXECUTE FUNCTION queues_renew_link_schema_token();
""",
    f"""
CREATE OR REPLACE FUNCTION queues_renew_queue_schema_tokens() RETURNS trigger AS $$
BEGIN
    UPDATE zstorage_table SET schema_token = {PG_TOKEN}
    WHERE id IN (SELECT table_id FROM queues_queuelink WHERE queue_id = NEW.id);
    RETURN NULL;
END $$ LANGUAGE plpgsql;
""",
    """
CREATE TRIGGER queues_queue_schema_token AFTER UPDATE ON queues_queue
FOR EACH ROW EXECUTE FUNCTION queues_renew_queue_schema_tokens();
""",
]
SQLITE = [
    f"""CREATE TRIGGER queues_queuelink_schema_token_insert AFTER INSERT ON queues_queuelink
BEGIN UPDATE zstorage_table SET schema_token = {SQLITE_TOKEN} WHERE id = NEW.table_id; END;""",
    f"""CREATE TRIGGER queues_queuelink_schema_token_update AFTER UPDATE ON queues_queuelink
BEGIN UPDATE zstorage_table SET schema_token = {SQLITE_TOKEN}
WHERE id IN (OLD.table_id, NEW.table_id); END;""",
    f"""CREATE TRIGGER queues_queuelink_schema_token_delete AFTER DELETE ON queues_queuelink
BEGIN UPDATE zstorage_table SET schema_token = {SQLITE_TOKEN} WHERE id = OLD.table_id; END;""",
    f"""CREATE TRIGGER queues_queue_schema_token_update AFTER UPDATE ON queues_queue
BEGIN UPDATE zstorage_table SET schema_token = {SQLITE_TOKEN}
WHERE id IN (SELECT table_id FROM queues_queuelink WHERE queue_id = NEW.id); END;""",
]


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for sql in {"postgresql": POSTGRESQL, "sqlite": SQLITE}.get(vendor, []):
        schema_editor.execute(sql)


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(
            "DROP TRIGGER IF EXISTS queues_queuelink_schema_token ON queues_queuelink"
        )
        schema_editor.execute("DROP TRIGGER IF EXISTS queues_queue_schema_token ON queues_queue")
        schema_editor.execute("DROP FUNCTION IF EXISTS queues_renew_link_schema_token()")
        schema_editor.execute("DROP FUNCTION IF EXISTS queues_renew_queue_schema_tokens()")
    elif vendor == "sqlite":
        for name in (
            "queuelink_schema_token_insert",
            "queuelink_schema_token_update",
            "queuelink_schema_token_delete",
            "queue_schema_token_update",
        ):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS queues_{name}")


class Migration(migrations.Migration):
    dependencies = [
        ("queues", "0004_message_priority"),
        ("zstorage", "0004_table_schema_token"),
    ]

    operations = [migrations.RunPython(create_triggers, drop_triggers)]
